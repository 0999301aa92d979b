# METADATA
# title: Fund transfers
# description: |
#   What an account query needs, plus a fresh strong factor — a passkey login
#   no older than step_up.max_age seconds, else a step-up obligation — a device
#   of at least medium trust without anomalies, and low risk.
package ztgate.transfer

import rego.v1

import data.ztgate.common

decision := result if {
	input.version == "1"
	entry := data.ztgate.config.routes[input.route.id]
	entry.classification == "transfer"
	entry.api_product == input.route.api_product
	settings := data.ztgate.config.classifications.transfer
	acr_levels := data.ztgate.config.acr_levels
	trust_levels := data.ztgate.config.trust_levels
	trust := object.get(trust_levels, input.device.trust, 0)
	checks := {
		"identity:not_customer": input.identity.kind == "customer",
		"identity:missing_scope": object.get(entry, "scope", null) in input.identity.scopes,
		"device:unknown": input.device.known,
		"device:not_bound": input.device.bound_to_subject,
		"device:untrusted": trust >= trust_levels[settings.min_device_trust],
		"device:anomalous": count(input.device.anomalies) == 0,
		"risk:too_high": input.risk.score < object.get(entry, "risk_threshold", settings.risk_threshold),
	}
	step_up := settings.step_up
	acr := object.get(acr_levels, input.identity.acr, 0)
	now := input.time.now
	step_checks := {
		"step_up:acr_too_weak": acr >= acr_levels[step_up.acr],
		"step_up:auth_too_old": common.fresh(input.identity.auth_time, now, step_up.max_age, settings.clock_skew),
	}
	result := common.decide(checks, step_checks, step_up, common.allowed("transfer", settings, entry))
}
