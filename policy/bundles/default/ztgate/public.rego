# METADATA
# title: Public product information
# description: Open to anyone, anonymous included; rate limited, not audited.
package ztgate.public

import rego.v1

assess(entry, settings) := {
	"checks": {},
	"step_up": null,
	"reason": "allow:public",
	"obligations": {
		"step_up": null,
		"mask_profile": object.get(entry, "mask_profile", settings.mask_profile),
		"headers": {"x-ztgate-classification": "public"},
		"rate_limit_tier": settings.rate_limit_tier,
		"audit": settings.audit,
	},
}
