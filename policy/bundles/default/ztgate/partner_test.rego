# METADATA
# title: Partner (open-banking) route tests
package ztgate.partner_test

import rego.v1

import data.ztgate.fixtures_test as fx

test_partner_allowed if {
	result := fx.decide(fx.partner)
	result.allow == true
	result.reasons == ["allow:partner"]
	result.obligations == {
		"step_up": null,
		"mask_profile": "partner",
		"headers": {"x-ztgate-classification": "partner", "x-ztgate-consent-id": "cns-5b2e91"},
		"rate_limit_tier": "partner-standard",
		"audit": "full",
	}
}

test_partner_ipv6_network_allowed if {
	fx.decide(object.union(fx.partner, {"request": {"client_address": "2001:db8:100::7"}})).allow == true
}

test_partner_own_rate_limit_tier if {
	doc := object.union(fx.partner, {
		"identity": {"client_id": "insurer-harbourshield", "subject": "insurer-harbourshield"},
		"request": {"client_address": "192.0.2.70"},
	})
	result := fx.decide(doc)
	result.allow == true
	result.obligations.rate_limit_tier == "partner-gold"
}

test_partner_outside_networks_denied if {
	result := fx.decide(object.union(fx.partner, {"request": {"client_address": "203.0.113.45"}}))
	fx.denied(result)
	result.reasons == ["partner:network_not_allowed"]
}

test_partner_other_family_denied if {
	result := fx.decide(object.union(fx.partner, {"request": {"client_address": "2001:db8:200::1"}}))
	result.reasons == ["partner:network_not_allowed"]
}

test_partner_unknown_client_denied if {
	result := fx.decide(object.union(fx.partner, {"identity": {"client_id": "fintech-unknown"}}))
	fx.denied(result)
	result.reasons == ["partner:unknown_client"]
}

registered := {
	"status": "active",
	"allowed_networks": ["198.51.100.0/24"],
	"rate_limit_tier": "partner-trial",
}

test_registered_partner_allowed_with_its_own_tier if {
	doc := object.union(fx.partner, {"identity": {"client_id": "c-dyn1", "partner": registered}})
	result := fx.decide(doc)
	result.allow == true
	result.obligations.rate_limit_tier == "partner-trial"
}

test_registered_partner_without_tier_gets_the_default if {
	facts := object.union(registered, {"rate_limit_tier": null})
	doc := object.union(fx.partner, {"identity": {"client_id": "c-dyn1", "partner": facts}})
	fx.decide(doc).obligations.rate_limit_tier == "partner"
}

test_registered_partner_outside_its_networks_denied if {
	facts := object.union(registered, {"allowed_networks": ["10.0.0.0/8"]})
	doc := object.union(fx.partner, {"identity": {"client_id": "c-dyn1", "partner": facts}})
	fx.decide(doc).reasons == ["partner:network_not_allowed"]
}

test_registered_partner_suspended_denied if {
	facts := object.union(registered, {"status": "suspended"})
	doc := object.union(fx.partner, {"identity": {"client_id": "c-dyn1", "partner": facts}})
	fx.decide(doc).reasons == ["partner:inactive"]
}

test_the_banks_list_wins_over_registration_facts if {
	facts := object.union(registered, {"allowed_networks": ["10.0.0.0/8"]})
	doc := object.union(fx.partner, {"identity": {"partner": facts}})
	result := fx.decide(doc)
	result.allow == true
	result.obligations.rate_limit_tier == "partner-standard"
}

test_partner_without_client_id_denied if {
	result := fx.decide(object.union(fx.partner, {"identity": {"client_id": null}}))
	result.reasons == ["partner:unknown_client"]
}

test_partner_suspended_denied if {
	doc := object.union(fx.partner, {
		"identity": {"client_id": "aggregator-suspended"},
		"request": {"client_address": "203.0.113.200"},
	})
	result := fx.decide(doc)
	fx.denied(result)
	result.reasons == ["partner:inactive"]
}

test_partner_missing_scope_denied if {
	result := fx.decide(object.union(fx.partner, {"identity": {"scopes": ["ob:transactions:read"]}}))
	fx.denied(result)
	result.reasons == ["identity:missing_scope"]
}

test_partner_customer_token_denied if {
	result := fx.decide(object.union(fx.partner, {"identity": {"kind": "customer"}}))
	result.reasons == ["identity:not_partner"]
}

test_partner_without_consent_denied if {
	result := fx.decide(object.union(fx.partner, {"identity": {"consent": null}}))
	fx.denied(result)
	result.reasons == ["consent:missing"]
}

test_partner_revoked_consent_denied if {
	result := fx.decide(object.union(fx.partner, {"identity": {"consent": {"status": "revoked"}}}))
	fx.denied(result)
	result.reasons == ["consent:inactive"]
}

test_partner_expired_consent_denied if {
	result := fx.decide(object.union(fx.partner, {"identity": {"consent": {"expires_at": fx.now}}}))
	fx.denied(result)
	result.reasons == ["consent:expired"]
}

test_partner_consent_not_covering_account_denied if {
	result := fx.decide(object.union(fx.partner, {"route": {"params": {"account_id": "6222020200000000000"}}}))
	fx.denied(result)
	result.reasons == ["consent:resource_not_covered"]
}

test_partner_route_without_params_not_covered if {
	result := fx.decide(json.remove(fx.partner, ["route/params"]))
	result.reasons == ["consent:resource_not_covered"]
}

test_partner_listing_needs_active_consent_only if {
	listing := {"route": {"id": "ob.accounts.list", "params": {}}}
	fx.decide(object.union(fx.partner, listing)).allow == true
	result := fx.decide(object.union(fx.partner, object.union(listing, {"identity": {"consent": {"status": "pending"}}})))
	result.reasons == ["consent:inactive"]
}

test_partner_risk_too_high_denied if {
	result := fx.decide(object.union(fx.partner, {"risk": {"score": 60}}))
	result.reasons == ["risk:too_high"]
}

test_partner_suspicious_client_device_denied if {
	result := fx.decide(object.union(fx.partner, {"device": {"trust": "suspicious"}}))
	fx.denied(result)
	result.reasons == ["device:suspicious"]
}

test_partner_everything_wrong_lists_every_reason if {
	doc := object.union(fx.partner, {
		"identity": {"kind": "anonymous", "client_id": null, "scopes": [], "consent": null},
		"risk": {"score": 100},
	})
	result := fx.decide(doc)
	fx.denied(result)
	result.reasons == [
		"consent:missing",
		"identity:missing_scope",
		"identity:not_partner",
		"partner:unknown_client",
		"risk:too_high",
	]
}
