# METADATA
# title: Customer account queries
# description: |
#   A customer token carrying the route's scope, at the classification's
#   minimum acr (MFA; passkey is stronger), from a known device bound to that
#   customer and not assessed suspicious, with risk below the threshold. A
#   token that is only too weak gets a step-up obligation to that acr (RFC 9470).
package ztgate.customer

import rego.v1

# entry: the route's table entry; settings: its classification's; cfg: data.ztgate.config.
assess(entry, settings, cfg) := {
	"checks": {
		"identity:not_customer": input.identity.kind == "customer",
		"identity:missing_scope": object.get(entry, "scope", null) in input.identity.scopes,
		"device:unknown": input.device.known,
		"device:not_bound": input.device.bound_to_subject,
		"device:suspicious": input.device.trust != "suspicious",
		"risk:too_high": input.risk.score < object.get(entry, "risk_threshold", settings.risk_threshold),
		"step_up:acr_too_weak": object.get(cfg.acr_levels, input.identity.acr, 0) >= cfg.acr_levels[settings.min_acr],
	},
	"step_up": {"acr": settings.min_acr},
	"reason": "allow:account",
	"obligations": {
		"step_up": null,
		"mask_profile": object.get(entry, "mask_profile", settings.mask_profile),
		"headers": {"x-ztgate-classification": "account"},
		"rate_limit_tier": settings.rate_limit_tier,
		"audit": settings.audit,
	},
}
