# METADATA
# title: Customer account queries
# description: |
#   A customer token carrying the route's scope, at the classification's
#   minimum acr (MFA; passkey is stronger), from a known device bound to that
#   customer, with risk below the threshold. A token that is only too weak gets
#   a step-up obligation to that acr (RFC 9470).
package ztgate.customer

import rego.v1

import data.ztgate.common

decision := result if {
	input.version == "1"
	entry := data.ztgate.config.routes[input.route.id]
	entry.classification == "account"
	entry.api_product == input.route.api_product
	settings := data.ztgate.config.classifications.account
	acr_levels := data.ztgate.config.acr_levels
	checks := {
		"identity:not_customer": input.identity.kind == "customer",
		"identity:missing_scope": object.get(entry, "scope", null) in input.identity.scopes,
		"device:unknown": input.device.known,
		"device:not_bound": input.device.bound_to_subject,
		"risk:too_high": input.risk.score < object.get(entry, "risk_threshold", settings.risk_threshold),
	}
	acr := object.get(acr_levels, input.identity.acr, 0)
	step_checks := {"step_up:acr_too_weak": acr >= acr_levels[settings.min_acr]}
	step_up := {"acr": settings.min_acr}
	result := common.decide(checks, step_checks, step_up, common.allowed("account", settings, entry))
}
