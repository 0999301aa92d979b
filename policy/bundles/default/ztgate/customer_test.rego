# METADATA
# title: Customer account query tests
package ztgate.customer_test

import rego.v1

import data.ztgate.fixtures_test as fx

test_account_passkey_allowed if {
	result := fx.decide(fx.customer)
	result.allow == true
	result.reasons == ["allow:account"]
	result.obligations == {
		"step_up": null,
		"mask_profile": "customer",
		"headers": {"x-ztgate-classification": "account"},
		"rate_limit_tier": "customer",
		"audit": "standard",
	}
}

test_account_mfa_allowed if {
	result := fx.decide(object.union(fx.customer, {"identity": {"acr": "urn:ztgate:acr:mfa"}}))
	result.allow == true
}

test_account_password_only_steps_up if {
	result := fx.decide(object.union(fx.customer, {"identity": {"acr": "urn:ztgate:acr:pwd"}}))
	result.allow == false
	result.reasons == ["step_up:acr_too_weak"]
	result.obligations.step_up == {"acr": "urn:ztgate:acr:mfa"}
	result.obligations.mask_profile == "strict"
}

test_account_unknown_acr_steps_up if {
	result := fx.decide(object.union(fx.customer, {"identity": {"acr": "urn:example:acr:gold"}}))
	result.reasons == ["step_up:acr_too_weak"]
	result.obligations.step_up.acr == "urn:ztgate:acr:mfa"
}

test_account_null_acr_steps_up if {
	result := fx.decide(object.union(fx.customer, {"identity": {"acr": null}}))
	result.reasons == ["step_up:acr_too_weak"]
}

test_account_partner_token_denied if {
	result := fx.decide(object.union(fx.customer, {"identity": {"kind": "partner"}}))
	fx.denied(result)
	result.reasons == ["identity:not_customer"]
}

test_account_anonymous_denied if {
	result := fx.decide(object.union(fx.customer, {"identity": fx.anonymous}))
	fx.denied(result)
	result.reasons == ["identity:missing_scope", "identity:not_customer", "step_up:acr_too_weak"]
	result.obligations.step_up == null
}

test_account_staff_denied if {
	result := fx.decide(object.union(fx.customer, {"identity": {"kind": "staff", "roles": ["csr"]}}))
	result.reasons == ["identity:not_customer"]
}

test_account_missing_scope_denied if {
	result := fx.decide(object.union(fx.customer, {"identity": {"scopes": ["openid"]}}))
	fx.denied(result)
	result.reasons == ["identity:missing_scope"]
}

test_account_unknown_device_denied if {
	result := fx.decide(object.union(fx.customer, {"device": {"known": false, "bound_to_subject": false}}))
	fx.denied(result)
	result.reasons == ["device:not_bound", "device:unknown"]
}

test_account_device_not_bound_denied if {
	result := fx.decide(object.union(fx.customer, {"device": {"bound_to_subject": false}}))
	fx.denied(result)
	result.reasons == ["device:not_bound"]
}

# A suspicious device is denied even when bound to the customer.
test_account_suspicious_device_denied if {
	result := fx.decide(object.union(fx.customer, {"device": {"trust": "suspicious"}}))
	fx.denied(result)
	result.reasons == ["device:suspicious"]
}

# Account queries need a known, bound device; its trust level beyond that does not matter.
test_account_every_non_suspicious_trust_allowed if {
	every trust in ["bound_with_key", "bound", "known", "new"] {
		fx.decide(object.union(fx.customer, {"device": {"trust": trust}})).allow == true
	}
}

test_account_risk_at_threshold_denied if {
	result := fx.decide(object.union(fx.customer, {"risk": {"score": 70}}))
	fx.denied(result)
	result.reasons == ["risk:too_high"]
}

test_account_risk_below_threshold_allowed if {
	result := fx.decide(object.union(fx.customer, {"risk": {"score": 69}}))
	result.allow == true
}

test_account_route_overrides_risk_threshold if {
	cards := {"route": {"id": "cards.list", "api_product": "retail-cards"}, "identity": {"scopes": ["cards:read"]}}
	fx.decide(object.union(fx.customer, object.union(cards, {"risk": {"score": 59}}))).allow == true
	result := fx.decide(object.union(fx.customer, object.union(cards, {"risk": {"score": 60}})))
	result.reasons == ["risk:too_high"]
}

# Step-up is offered only when it alone stands between the request and an allow.
test_account_weak_acr_and_unbound_device_no_step_up if {
	result := fx.decide(object.union(fx.customer, {
		"identity": {"acr": "urn:ztgate:acr:pwd"},
		"device": {"bound_to_subject": false},
	}))
	fx.denied(result)
	result.reasons == ["device:not_bound", "step_up:acr_too_weak"]
	result.obligations.step_up == null
}
