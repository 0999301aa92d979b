# METADATA
# title: Sandbox and production environments on partner routes
# description: |
#   A sandbox client (identity.partner.environment, from its software statement)
#   passes only on sandbox routes (the table's environment), a production client
#   only on production ones; absent means production on both sides. The gateway's
#   route.environment must agree with the table's.
package ztgate.sandbox_test

import rego.v1

import data.ztgate.fixtures_test as fx

facts := {
	"status": "active",
	"allowed_networks": ["198.51.100.0/24"],
	"rate_limit_tier": "partner-trial",
}

sandbox_client := object.union(fx.partner, {"identity": {
	"client_id": "c-sandbox1",
	"partner": object.union(facts, {"environment": "sandbox"}),
}})

production_client := object.union(fx.partner, {"identity": {
	"client_id": "c-prod1",
	"partner": object.union(facts, {"environment": "production"}),
}})

sandbox_route := {"route": {
	"id": "sandbox.ob.accounts.balances",
	"api_product": "open-banking-accounts",
	"classification": "partner",
	"environment": "sandbox",
}}

test_sandbox_client_on_a_sandbox_route_allowed if {
	result := fx.decide(object.union(sandbox_client, sandbox_route))
	result.allow == true
	result.reasons == ["allow:partner"]
	result.obligations.mask_profile == "partner"
	result.obligations.rate_limit_tier == "partner-trial"
}

test_sandbox_client_on_a_production_route_denied if {
	result := fx.decide(sandbox_client)
	fx.denied(result)
	result.reasons == ["partner:wrong_environment"]
	explicit := object.union(sandbox_client, {"route": {"environment": "production"}})
	fx.decide(explicit).reasons == ["partner:wrong_environment"]
}

test_production_client_on_a_sandbox_route_denied if {
	result := fx.decide(object.union(production_client, sandbox_route))
	fx.denied(result)
	result.reasons == ["partner:wrong_environment"]
	fx.decide(production_client).allow == true
}

test_registration_without_environment_is_production if {
	doc := object.union(fx.partner, {"identity": {"client_id": "c-old1", "partner": facts}})
	fx.decide(doc).allow == true
	fx.decide(object.union(doc, sandbox_route)).reasons == ["partner:wrong_environment"]
}

test_a_partner_the_bank_lists_is_production if {
	result := fx.decide(object.union(fx.partner, sandbox_route))
	result.reasons == ["partner:wrong_environment"]
}

test_wrong_environment_is_listed_with_other_failures if {
	doc := object.union(object.union(sandbox_client, {"identity": {"consent": null}}), {"risk": {"score": 90}})
	fx.decide(doc).reasons == ["consent:missing", "partner:wrong_environment", "risk:too_high"]
}

test_gateway_saying_sandbox_on_a_production_route_denied if {
	doc := object.union(sandbox_client, {"route": {"environment": "sandbox"}})
	result := fx.decide(doc)
	fx.denied(result)
	result.reasons == ["route:environment_mismatch"]
}

test_gateway_omitting_the_environment_of_a_sandbox_route_denied if {
	doc := json.remove(object.union(sandbox_client, sandbox_route), ["route/environment"])
	result := fx.decide(doc)
	fx.denied(result)
	result.reasons == ["route:environment_mismatch"]
}
