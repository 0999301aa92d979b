# METADATA
# title: Public product information tests
package ztgate.public_test

import rego.v1

import data.ztgate.fixtures_test as fx

test_public_open_to_anonymous if {
	result := fx.decide(fx.public)
	result.allow == true
	result.reasons == ["allow:public"]
	result.obligations == {
		"step_up": null,
		"mask_profile": "public",
		"headers": {"x-ztgate-classification": "public"},
		"rate_limit_tier": "public",
		"audit": "none",
	}
}

# Public product information stays open whatever the device (the fixture's is suspicious).
test_public_open_to_suspicious_devices if {
	fx.public.device.trust == "suspicious"
	fx.decide(fx.public).allow == true
}

test_public_open_to_customers if {
	result := fx.decide(object.union(fx.customer, {"route": fx.public.route}))
	result.allow == true
}

test_public_route_table_decides_classification if {
	# The gateway cannot declare a protected route public.
	result := fx.decide(object.union(fx.public, {"route": {"id": "accounts.balances", "api_product": "products"}}))
	fx.denied(result)
	result.reasons == ["route:api_product_mismatch", "route:classification_mismatch"]
}
