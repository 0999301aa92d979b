# METADATA
# title: Fund transfers
# description: |
#   What an account query needs, plus a fresh strong factor — a passkey login
#   no older than step_up.max_age seconds, else a step-up obligation — a device
#   trusted at least `bound` (bound to the customer, with or without a
#   hardware key) without anomalies, and low risk.
package ztgate.transfer

import rego.v1

import data.ztgate.common

# entry: the route's table entry; settings: its classification's; cfg: data.ztgate.config.
assess(entry, settings, cfg) := {
	"checks": {
		"identity:not_customer": input.identity.kind == "customer",
		"identity:missing_scope": object.get(entry, "scope", null) in input.identity.scopes,
		"device:unknown": input.device.known,
		"device:not_bound": input.device.bound_to_subject,
		"device:suspicious": input.device.trust != "suspicious",
		"device:untrusted": object.get(cfg.trust_levels, input.device.trust, 0) >= cfg.trust_levels[settings.min_device_trust],
		"device:anomalous": count(input.device.anomalies) == 0,
		"risk:too_high": input.risk.score < object.get(entry, "risk_threshold", settings.risk_threshold),
		"step_up:acr_too_weak": object.get(cfg.acr_levels, input.identity.acr, 0) >= cfg.acr_levels[settings.step_up.acr],
		"step_up:auth_too_old": common.fresh(input.identity.auth_time, input.time.now, settings.step_up.max_age, settings.clock_skew),
	},
	"step_up": settings.step_up,
	"reason": "allow:transfer",
	"obligations": {
		"step_up": null,
		"mask_profile": object.get(entry, "mask_profile", settings.mask_profile),
		"headers": {"x-ztgate-classification": "transfer"},
		"rate_limit_tier": settings.rate_limit_tier,
		"audit": settings.audit,
	},
}
