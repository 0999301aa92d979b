# METADATA
# title: Fund transfer tests
package ztgate.transfer_test

import rego.v1

import data.ztgate.fixtures_test as fx

step_up := {"acr": "urn:ztgate:acr:passkey", "max_age": 300}

test_transfer_fresh_passkey_allowed if {
	result := fx.decide(fx.transfer)
	result.allow == true
	result.reasons == ["allow:transfer"]
	result.obligations.audit == "full"
	result.obligations.rate_limit_tier == "customer-payments"
	result.obligations.step_up == null
}

test_transfer_auth_at_max_age_allowed if {
	fx.decide(object.union(fx.transfer, {"identity": {"auth_time": fx.now - 300}})).allow == true
}

test_transfer_old_auth_steps_up if {
	result := fx.decide(object.union(fx.transfer, {"identity": {"auth_time": fx.now - 301}}))
	result.allow == false
	result.reasons == ["step_up:auth_too_old"]
	result.obligations.step_up == step_up
	result.obligations.audit == "full"
}

test_transfer_unknown_auth_time_steps_up if {
	result := fx.decide(object.union(fx.transfer, {"identity": {"auth_time": null}}))
	result.reasons == ["step_up:auth_too_old"]
	result.obligations.step_up == step_up
}

test_transfer_auth_time_in_future_steps_up if {
	fx.decide(object.union(fx.transfer, {"identity": {"auth_time": fx.now + 60}})).allow == true
	result := fx.decide(object.union(fx.transfer, {"identity": {"auth_time": fx.now + 61}}))
	result.reasons == ["step_up:auth_too_old"]
}

test_transfer_mfa_token_steps_up_to_passkey if {
	result := fx.decide(object.union(fx.transfer, {"identity": {"acr": "urn:ztgate:acr:mfa"}}))
	result.allow == false
	result.reasons == ["step_up:acr_too_weak"]
	result.obligations.step_up == step_up
}

test_transfer_weak_and_old_steps_up_once if {
	result := fx.decide(object.union(fx.transfer, {"identity": {"acr": "urn:ztgate:acr:pwd", "auth_time": fx.now - 7200}}))
	result.reasons == ["step_up:acr_too_weak", "step_up:auth_too_old"]
	result.obligations.step_up == step_up
}

test_transfer_risk_at_threshold_denied if {
	result := fx.decide(object.union(fx.transfer, {"risk": {"score": 30}}))
	fx.denied(result)
	result.reasons == ["risk:too_high"]
	result.obligations.step_up == null
}

test_transfer_risk_below_threshold_allowed if {
	fx.decide(object.union(fx.transfer, {"risk": {"score": 29}})).allow == true
}

test_transfer_high_risk_and_old_auth_no_step_up if {
	result := fx.decide(object.union(fx.transfer, {"risk": {"score": 75}, "identity": {"auth_time": fx.now - 3600}}))
	fx.denied(result)
	result.reasons == ["risk:too_high", "step_up:auth_too_old"]
	result.obligations.step_up == null
}

# Transfers need a device bound to the customer: bound_with_key or bound.
test_transfer_known_device_denied if {
	result := fx.decide(object.union(fx.transfer, {"device": {"trust": "known"}}))
	fx.denied(result)
	result.reasons == ["device:untrusted"]
}

test_transfer_new_device_denied if {
	result := fx.decide(object.union(fx.transfer, {"device": {"trust": "new"}}))
	result.reasons == ["device:untrusted"]
}

test_transfer_suspicious_device_denied if {
	result := fx.decide(object.union(fx.transfer, {"device": {"trust": "suspicious"}}))
	fx.denied(result)
	result.reasons == ["device:suspicious", "device:untrusted"]
}

test_transfer_unknown_trust_value_denied if {
	result := fx.decide(object.union(fx.transfer, {"device": {"trust": "high"}}))
	result.reasons == ["device:untrusted"]
}

test_transfer_bound_device_allowed if {
	fx.decide(object.union(fx.transfer, {"device": {"trust": "bound"}})).allow == true
}

test_transfer_bound_with_key_device_allowed if {
	fx.decide(object.union(fx.transfer, {"device": {"trust": "bound_with_key"}})).allow == true
}

test_transfer_device_anomalies_denied if {
	result := fx.decide(object.union(fx.transfer, {"device": {"anomalies": ["ja4_mismatch"]}}))
	fx.denied(result)
	result.reasons == ["device:anomalous"]
}

test_transfer_unbound_device_denied if {
	result := fx.decide(object.union(fx.transfer, {"device": {"bound_to_subject": false}}))
	result.reasons == ["device:not_bound"]
}

test_transfer_unknown_device_denied if {
	result := fx.decide(object.union(fx.transfer, {"device": {"known": false}}))
	result.reasons == ["device:unknown"]
}

test_transfer_missing_scope_denied if {
	result := fx.decide(object.union(fx.transfer, {"identity": {"scopes": ["accounts:read"]}}))
	result.reasons == ["identity:missing_scope"]
}

test_transfer_partner_token_denied if {
	result := fx.decide(object.union(fx.transfer, {"identity": {"kind": "partner"}}))
	result.reasons == ["identity:not_customer"]
}

test_beneficiary_route_lowers_risk_threshold if {
	route := {"route": {"id": "beneficiaries.add", "api_product": "retail-payments", "classification": "transfer"}}
	fx.decide(object.union(fx.transfer, object.union(route, {"risk": {"score": 19}}))).allow == true
	result := fx.decide(object.union(fx.transfer, object.union(route, {"risk": {"score": 20}})))
	result.reasons == ["risk:too_high"]
}
