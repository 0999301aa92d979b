# METADATA
# title: Staff (remote customer service) route tests
package ztgate.staff_test

import rego.v1

import data.ztgate.fixtures_test as fx

unlock := {"route": {"id": "staff.customers.unlock"}}

test_staff_agent_allowed_with_restrictive_mask if {
	result := fx.decide(fx.staff)
	result.allow == true
	result.reasons == ["allow:staff"]
	result.obligations == {
		"step_up": null,
		"mask_profile": "staff_restricted",
		"headers": {"x-ztgate-classification": "staff"},
		"rate_limit_tier": "staff",
		"audit": "full",
	}
}

test_staff_unlock_needs_supervisor if {
	result := fx.decide(object.union(fx.staff, unlock))
	fx.denied(result)
	result.reasons == ["identity:missing_role"]
}

test_staff_supervisor_unlock_gets_route_mask if {
	result := fx.decide(object.union(fx.staff, object.union(unlock, {"identity": {"roles": ["csr_supervisor"]}})))
	result.allow == true
	result.obligations.mask_profile == "staff_minimal"
}

test_staff_without_roles_denied if {
	result := fx.decide(object.union(fx.staff, {"identity": {"roles": []}}))
	result.reasons == ["identity:missing_role"]
}

test_staff_route_without_roles_admits_no_one if {
	routes := {"staff.customers.view": {"classification": "staff", "api_product": "remote-service"}}
	result := fx.decide(fx.staff) with data.ztgate.config.routes as routes
	fx.denied(result)
	result.reasons == ["identity:missing_role"]
}

test_staff_customer_token_denied if {
	result := fx.decide(object.union(fx.staff, {"identity": {"kind": "customer"}}))
	fx.denied(result)
	result.reasons == ["identity:not_staff"]
}

test_staff_password_only_steps_up if {
	result := fx.decide(object.union(fx.staff, {"identity": {"acr": "urn:ztgate:acr:pwd"}}))
	result.allow == false
	result.reasons == ["step_up:acr_too_weak"]
	result.obligations.step_up == {"acr": "urn:ztgate:acr:mfa"}
}

test_staff_unknown_device_denied if {
	result := fx.decide(object.union(fx.staff, {"device": {"known": false}}))
	result.reasons == ["device:unknown"]
}

test_staff_known_device_denied if {
	result := fx.decide(object.union(fx.staff, {"device": {"trust": "known"}}))
	fx.denied(result)
	result.reasons == ["device:untrusted"]
}

test_staff_bound_device_allowed if {
	fx.decide(object.union(fx.staff, {"device": {"trust": "bound"}})).allow == true
}

test_staff_suspicious_device_denied if {
	result := fx.decide(object.union(fx.staff, {"device": {"trust": "suspicious"}}))
	fx.denied(result)
	result.reasons == ["device:suspicious", "device:untrusted"]
}

test_staff_risk_too_high_denied if {
	result := fx.decide(object.union(fx.staff, {"risk": {"score": 50}}))
	result.reasons == ["risk:too_high"]
	fx.decide(object.union(fx.staff, {"risk": {"score": 49}})).allow == true
}

accounts := {"route": {"id": "staff.customers.accounts"}}

audit_route := {"route": {"id": "audit.customers.activity", "api_product": "audit"}}

auditor := object.union(fx.staff, object.union(audit_route, {"identity": {"roles": ["auditor"]}}))

test_staff_customer_accounts_for_csr_roles if {
	result := fx.decide(object.union(fx.staff, accounts))
	result.allow == true
	result.obligations.mask_profile == "staff_restricted"
	supervisor := {"identity": {"roles": ["csr_supervisor"]}}
	fx.decide(object.union(fx.staff, object.union(accounts, supervisor))).allow == true
}

test_auditor_gets_audit_pseudonyms if {
	result := fx.decide(auditor)
	result.allow == true
	result.reasons == ["allow:staff"]
	result.obligations.mask_profile == "audit"
	result.obligations.audit == "full"
}

test_audit_route_refuses_customer_service_roles if {
	every roles in [["csr"], ["csr_supervisor"], []] {
		result := fx.decide(object.union(auditor, {"identity": {"roles": roles}}))
		fx.denied(result)
		result.reasons == ["identity:missing_role"]
	}
}

test_auditor_cannot_serve_customers if {
	every id in ["staff.customers.view", "staff.customers.accounts", "staff.customers.unlock"] {
		doc := object.union(fx.staff, {"route": {"id": id}, "identity": {"roles": ["auditor"]}})
		result := fx.decide(doc)
		fx.denied(result)
		result.reasons == ["identity:missing_role"]
	}
}

test_auditor_needs_mfa_and_a_bound_device if {
	weak := fx.decide(object.union(auditor, {"identity": {"acr": "urn:ztgate:acr:pwd"}}))
	weak.reasons == ["step_up:acr_too_weak"]
	known := fx.decide(object.union(auditor, {"device": {"trust": "known"}}))
	fx.denied(known)
	known.reasons == ["device:untrusted"]
}
