# METADATA
# title: Route table tests for the routes the default gateway configuration serves
# description: |
#   gateway/defaults/gateway.json routes these ids; each must be in the table
#   with the gateway's classification and API product, and judged by its
#   classification's rules (tests/policy/test_default_bundle.py checks that no
#   route of the gateway's default configuration is missing here).
package ztgate.routes_test

import rego.v1

import data.ztgate.fixtures_test as fx

route(id, api_product, classification) := {"route": {
	"id": id,
	"api_product": api_product,
	"classification": classification,
	"params": {},
}}

# -- public: the authentication service's own routes ---------------------------------

test_authn_routes_open_to_anonymous if {
	every id in ["authn.metadata", "authn.passkey_page", "authn.api"] {
		result := fx.decide(object.union(fx.public, route(id, "authn", "public")))
		result.allow == true
		result.reasons == ["allow:public"]
		result.obligations.audit == "none"
	}
}

test_authn_routes_are_public_in_the_table_only if {
	result := fx.decide(object.union(fx.public, route("authn.api", "authn", "account")))
	fx.denied(result)
	result.reasons == ["route:classification_mismatch"]
}

# -- account -----------------------------------------------------------------------------

customer_with_scopes(scopes) := object.union(fx.customer, {"identity": {"scopes": scopes}})

test_customers_profile_needs_profile_read if {
	doc := route("customers.profile", "retail-profile", "account")
	allowed := fx.decide(object.union(customer_with_scopes(["openid", "profile:read"]), doc))
	allowed.allow == true
	allowed.reasons == ["allow:account"]
	allowed.obligations.mask_profile == "customer"
	denied := fx.decide(object.union(fx.customer, doc))
	fx.denied(denied)
	denied.reasons == ["identity:missing_scope"]
}

test_accounts_detail_allowed_with_accounts_read if {
	result := fx.decide(object.union(fx.customer, route("accounts.detail", "retail-accounts", "account")))
	result.allow == true
	result.reasons == ["allow:account"]
}

test_accounts_detail_needs_a_bound_device if {
	doc := object.union(fx.customer, route("accounts.detail", "retail-accounts", "account"))
	result := fx.decide(object.union(doc, {"device": {"bound_to_subject": false}}))
	fx.denied(result)
	result.reasons == ["device:not_bound"]
}

test_cards_detail_needs_cards_read_and_lower_risk if {
	doc := object.union(customer_with_scopes(["cards:read"]), route("cards.detail", "retail-cards", "account"))
	fx.decide(doc).allow == true
	risky := fx.decide(object.union(doc, {"risk": {"score": 60}}))
	fx.denied(risky)
	risky.reasons == ["risk:too_high"]
	fx.decide(object.union(fx.customer, route("cards.detail", "retail-cards", "account"))).reasons == ["identity:missing_scope"]
}

# Viewing a transfer is an account query: no fresh passkey, but payments:read.
test_transfers_view_is_an_account_query if {
	doc := route("transfers.view", "retail-payments", "account")
	mfa := {"identity": {"acr": "urn:ztgate:acr:mfa", "auth_time": fx.now - 7200}}
	allowed := fx.decide(object.union(object.union(customer_with_scopes(["payments:read"]), doc), mfa))
	allowed.allow == true
	allowed.reasons == ["allow:account"]
	denied := fx.decide(object.union(fx.customer, doc))
	fx.denied(denied)
	denied.reasons == ["identity:missing_scope"]
}

# -- partner -----------------------------------------------------------------------------

test_ob_payments_view_needs_ob_payments_read if {
	doc := route("ob.payments.view", "open-banking-payments", "partner")
	scoped := object.union(fx.partner, {"identity": {"scopes": ["ob:payments:read"]}})
	allowed := fx.decide(object.union(scoped, doc))
	allowed.allow == true
	allowed.reasons == ["allow:partner"]
	allowed.obligations.headers["x-ztgate-consent-id"] == "cns-5b2e91"
	denied := fx.decide(object.union(fx.partner, doc))
	fx.denied(denied)
	denied.reasons == ["identity:missing_scope"]
}

test_ob_payments_view_needs_a_consent if {
	doc := object.union(fx.partner, route("ob.payments.view", "open-banking-payments", "partner"))
	result := fx.decide(object.union(doc, {"identity": {"scopes": ["ob:payments:read"], "consent": null}}))
	fx.denied(result)
	result.reasons == ["consent:missing"]
}

# -- staff -------------------------------------------------------------------------------

test_staff_customers_search_for_csr_roles if {
	doc := object.union(fx.staff, route("staff.customers.search", "remote-service", "staff"))
	result := fx.decide(doc)
	result.allow == true
	result.obligations.mask_profile == "staff_restricted"
	fx.decide(object.union(doc, {"identity": {"roles": ["csr_supervisor"]}})).allow == true
	teller := fx.decide(object.union(doc, {"identity": {"roles": ["teller"]}}))
	fx.denied(teller)
	teller.reasons == ["identity:missing_role"]
}
