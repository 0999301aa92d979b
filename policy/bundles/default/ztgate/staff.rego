# METADATA
# title: Staff routes (remote customer service)
# description: |
#   A staff identity holding one of the route's roles, at MFA or stronger,
#   from a known device trusted at least `bound` (a managed device enrolled
#   to the agent), with risk below the threshold.
#   Allowed staff see customer data through a restrictive mask profile
#   (staff_restricted, or the route's own), fully audited.
package ztgate.staff

import rego.v1

# entry: the route's table entry; settings: its classification's; cfg: data.ztgate.config.
assess(entry, settings, cfg) := {
	"checks": {
		"identity:not_staff": input.identity.kind == "staff",
		"identity:missing_role": has_role(input.identity.roles, object.get(entry, "roles", [])),
		"device:unknown": input.device.known,
		"device:suspicious": input.device.trust != "suspicious",
		"device:untrusted": object.get(cfg.trust_levels, input.device.trust, 0) >= cfg.trust_levels[settings.min_device_trust],
		"risk:too_high": input.risk.score < object.get(entry, "risk_threshold", settings.risk_threshold),
		"step_up:acr_too_weak": object.get(cfg.acr_levels, input.identity.acr, 0) >= cfg.acr_levels[settings.min_acr],
	},
	"step_up": {"acr": settings.min_acr},
	"reason": "allow:staff",
	"obligations": {
		"step_up": null,
		"mask_profile": object.get(entry, "mask_profile", settings.mask_profile),
		"headers": {"x-ztgate-classification": "staff"},
		"rate_limit_tier": settings.rate_limit_tier,
		"audit": settings.audit,
	},
}

# A route without roles admits no one.
has_role(held, needed) if {
	some role in held
	role in needed
} else := false
