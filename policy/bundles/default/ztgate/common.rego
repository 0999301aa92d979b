# METADATA
# title: Shared helpers of the default zero-trust bundle
# description: |
#   Functions only: levels, and the one way every classification module turns
#   its named checks into a decision (the result contract of policy/decision.py).
#   Performance note (measured in regorus): a rule evaluation or a function call
#   costs a few microseconds, an expression a fraction of one, so each module
#   does its work in one rule body and calls only these few functions.
package ztgate.common

import rego.v1

# Levels: facts from the input are ranked with object.get(levels, value, 0), so
# an unknown or null value ranks below every level; configured requirements
# are ranked with levels[name], so a name misspelt in data is undefined, which
# makes the decision undefined and so the default deny (a typo must not lower
# the bar). These are written inline in the modules: in regorus a function call
# costs several microseconds, an expression a fraction of one.

# The subject authenticated at most max_age seconds ago (auth_time no more than
# skew seconds in the future); false when auth_time is unknown.
fresh(auth_time, now, max_age, skew) if {
	is_number(auth_time)
	now - auth_time <= max_age
	auth_time - now <= skew
} else := false

# Obligations of every deny: strictest masking, full audit, no upstream headers.
deny_obligations(tier) := {
	"step_up": null,
	"mask_profile": "strict",
	"headers": {},
	"rate_limit_tier": tier,
	"audit": "full",
}

# What an allowed request carries: the classification's settings, where the
# route may override mask_profile (and, in the modules, risk_threshold).
allowed(classification, settings, entry) := {
	"reason": concat(":", ["allow", classification]),
	"obligations": {
		"step_up": null,
		"mask_profile": object.get(entry, "mask_profile", settings.mask_profile),
		"headers": {"x-ztgate-classification": classification},
		"rate_limit_tier": settings.rate_limit_tier,
		"audit": settings.audit,
	},
}

# decide turns named checks into a decision.
#   checks:      reason -> true when satisfied; any other value is a failure
#   step_checks: like checks, but a fresh, stronger login would satisfy them
#   step_up:     the obligation offered when only step_checks fail
#   allow:       {"reason": ..., "obligations": ...} used when everything passes
# A step-up is offered only when completing it would let the request through;
# otherwise every failed check, step-up ones included, is a reason.
decide(checks, step_checks, step_up, allow) := {
	"allow": true,
	"reasons": [allow.reason],
	"obligations": allow.obligations,
} if {
	every ok in checks { ok == true }
	every ok in step_checks { ok == true }
} else := {
	"allow": false,
	"reasons": sort({reason | some reason, ok in step_checks; ok != true}),
	"obligations": object.union(
		deny_obligations(allow.obligations.rate_limit_tier),
		{"step_up": step_up},
	),
} if {
	every ok in checks { ok == true }
} else := {
	"allow": false,
	"reasons": sort({reason | some reason, ok in object.union(checks, step_checks); ok != true}),
	"obligations": deny_obligations(allow.obligations.rate_limit_tier),
}
