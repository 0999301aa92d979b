# METADATA
# title: Shared helpers of the default zero-trust bundle
# description: |
#   Functions only. Performance note (measured in regorus): a rule evaluation,
#   a data reference or a function call costs a few microseconds, an
#   expression a fraction of one; so each module assesses a request in one
#   function body, and these helpers are called only where they must be (a
#   transfer's freshness, and deny paths).
package ztgate.common

import rego.v1

# Levels: facts from the input are ranked with object.get(levels, value, 0), so
# an unknown or null value ranks below every level; configured requirements
# are ranked with levels[name], so a name misspelt in data is undefined, which
# makes the decision fall through to the final deny (a typo must not lower
# the bar). These are written inline in the modules.

# The subject authenticated at most max_age seconds ago (auth_time no more than
# skew seconds in the future); false when auth_time is unknown.
fresh(auth_time, now, max_age, skew) if {
	is_number(auth_time)
	now - auth_time <= max_age
	auth_time - now <= skew
} else := false

# Obligations of a deny the route table decided: strictest masking, full
# audit, no upstream headers.
deny_obligations(tier) := {
	"step_up": null,
	"mask_profile": "strict",
	"headers": {},
	"rate_limit_tier": tier,
	"audit": "full",
}

# The step-up obligation, when the only failed checks are step_up:* ones
# (completing it would let the request through); null otherwise.
step_up_offer(failed, step_up) := step_up if {
	every reason in failed { startswith(reason, "step_up:") }
} else := null
