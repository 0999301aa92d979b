# METADATA
# title: Entry rule and route table tests
package ztgate.main_test

import rego.v1

import data.ztgate.fixtures_test as fx

test_unknown_route_denied if {
	result := fx.decide(object.union(fx.customer, {"route": {"id": "accounts.export"}}))
	fx.denied(result)
	result.reasons == ["route:unknown"]
	result.obligations.step_up == null
}

test_classification_mismatch_denied if {
	result := fx.decide(object.union(fx.customer, {"route": {"classification": "public"}}))
	fx.denied(result)
	result.reasons == ["route:classification_mismatch"]
}

test_api_product_mismatch_denied if {
	result := fx.decide(object.union(fx.customer, {"route": {"api_product": "products"}}))
	fx.denied(result)
	result.reasons == ["route:api_product_mismatch"]
}

test_unsupported_version_denied if {
	result := fx.decide(object.union(fx.customer, {"version": "2"}))
	fx.denied(result)
	result.reasons == ["input:unsupported_version"]
}

test_unknown_classification_in_data_denied if {
	routes := {"accounts.balances": {"classification": "secret", "api_product": "retail-accounts"}}
	result := fx.decide(object.union(fx.customer, {"route": {"classification": "secret"}})) with data.ztgate.config.routes as routes
	fx.denied(result)
	result.reasons == ["route:unknown_classification"]
}

test_empty_input_denied if {
	result := fx.decide({})
	fx.denied(result)
	result.reasons == ["input:unsupported_version", "route:unknown"]
}

# A protected route entry without a scope admits no one.
test_route_without_scope_admits_no_one if {
	routes := {"accounts.balances": {"classification": "account", "api_product": "retail-accounts"}}
	result := fx.decide(fx.customer) with data.ztgate.config.routes as routes
	fx.denied(result)
	result.reasons == ["identity:missing_scope"]
}

# Settings missing a fact the policy needs are the final deny (no_rule_matched).
test_incomplete_settings_fail_closed if {
	settings := {"min_acr": "urn:ztgate:acr:mfa", "mask_profile": "customer"}
	result := fx.decide(fx.customer) with data.ztgate.config.classifications.account as settings
	fx.denied(result)
	result.reasons == ["policy:no_rule_matched"]
}

# A misspelt acr name in the classification settings must not lower the bar.
test_misspelt_min_acr_fails_closed if {
	result := fx.decide(fx.customer) with data.ztgate.config.classifications.account.min_acr as "urn:ztgate:acr:mfaa"
	fx.denied(result)
	result.reasons == ["policy:no_rule_matched"]
}

# An input missing a member the classification reads is the final deny.
test_missing_device_fails_closed if {
	result := fx.decide(json.remove(fx.customer, ["device"]))
	fx.denied(result)
	result.reasons == ["policy:no_rule_matched"]
}

test_allowed_result_shape if {
	result := fx.decide(fx.customer)
	object.keys(result) == {"allow", "reasons", "obligations"}
	object.keys(result.obligations) == {"step_up", "mask_profile", "headers", "rate_limit_tier", "audit"}
}
