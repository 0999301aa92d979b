# METADATA
# title: Staff routes (remote customer service)
# description: |
#   A staff identity holding one of the route's roles, at MFA or stronger,
#   from a known, highly trusted device, with risk below the threshold.
#   Allowed staff see customer data through a restrictive mask profile
#   (staff_restricted, or the route's own), fully audited.
package ztgate.staff

import rego.v1

import data.ztgate.common

decision := result if {
	input.version == "1"
	entry := data.ztgate.config.routes[input.route.id]
	entry.classification == "staff"
	entry.api_product == input.route.api_product
	settings := data.ztgate.config.classifications.staff
	acr_levels := data.ztgate.config.acr_levels
	trust_levels := data.ztgate.config.trust_levels
	trust := object.get(trust_levels, input.device.trust, 0)
	checks := {
		"identity:not_staff": input.identity.kind == "staff",
		"identity:missing_role": has_role(input.identity.roles, object.get(entry, "roles", [])),
		"device:unknown": input.device.known,
		"device:untrusted": trust >= trust_levels[settings.min_device_trust],
		"risk:too_high": input.risk.score < object.get(entry, "risk_threshold", settings.risk_threshold),
	}
	acr := object.get(acr_levels, input.identity.acr, 0)
	step_checks := {"step_up:acr_too_weak": acr >= acr_levels[settings.min_acr]}
	step_up := {"acr": settings.min_acr}
	result := common.decide(checks, step_checks, step_up, common.allowed("staff", settings, entry))
}

# A route without roles admits no one.
has_role(held, needed) if {
	some role in held
	role in needed
} else := false
