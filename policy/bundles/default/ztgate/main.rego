# METADATA
# title: ztgate default zero-trust policy, entry point
# description: |
#   The gateway evaluates only data.ztgate.main.decision. Deny by default:
#   whatever the rules below leave undefined (a missing fact, a misconfigured
#   route) falls through to the last else, a deny (policy:no_rule_matched;
#   an else rather than a `default` rule: regorus evaluates it ~3 µs faster). The route's table entry is looked up once, by
#   key; if it agrees with the gateway's route match (classification, API
#   product and environment, absent meaning production), the module of its
#   classification assesses the request (a function returning named checks and
#   the obligations of an allow) and `outcome` turns that into the decision.
#   Otherwise data.ztgate.routes.reasons explain the deny.
#   Performance (issue 4, acceptance check 5; measured in regorus): every rule
#   evaluation, data reference and function call costs microseconds, so the
#   allow path is this one rule body, one dispatch, one assessment and one
#   outcome — no rule of another package is evaluated on it.
package ztgate.main

import rego.v1

import data.ztgate.common
import data.ztgate.customer
import data.ztgate.partner
import data.ztgate.public
import data.ztgate.staff
import data.ztgate.transfer

decision := result if {
	input.version == "1"
	cfg := data.ztgate.config
	entry := cfg.routes[input.route.id]
	entry.classification == input.route.classification
	entry.api_product == input.route.api_product
	object.get(entry, "environment", "production") == object.get(input.route, "environment", "production")
	settings := cfg.classifications[entry.classification]
	result := outcome(assess(entry, settings, cfg))
} else := {
	"allow": false,
	"reasons": sort(data.ztgate.routes.reasons),
	"obligations": common.deny_obligations("default"),
} if {
	count(data.ztgate.routes.reasons) > 0
} else := {
	"allow": false,
	"reasons": ["policy:no_rule_matched"],
	"obligations": {
		"step_up": null,
		"mask_profile": "strict",
		"headers": {},
		"rate_limit_tier": "default",
		"audit": "full",
	},
}

# The classification's module assesses the request: one function call, chosen
# by the route table's classification (not the gateway's, which must agree).
assess(entry, settings, cfg) := public.assess(entry, settings) if {
	entry.classification == "public"
} else := customer.assess(entry, settings, cfg) if {
	entry.classification == "account"
} else := transfer.assess(entry, settings, cfg) if {
	entry.classification == "transfer"
} else := partner.assess(entry, settings, cfg) if {
	entry.classification == "partner"
} else := staff.assess(entry, settings, cfg) if {
	entry.classification == "staff"
}

# An assessment is {"checks", "step_up", "reason", "obligations"}:
#   checks:      reason -> true when satisfied; any other value is a failure.
#                Checks named step_up:* are ones a fresh, stronger login would
#                satisfy.
#   step_up:     the obligation offered when only step_up:* checks fail.
#   reason, obligations: the allow's, used when every check passes.
# A step-up is offered only when completing it would let the request through;
# otherwise every failed check, step-up ones included, is a reason.
outcome(a) := {"allow": true, "reasons": [a.reason], "obligations": a.obligations} if {
	every ok in a.checks { ok == true }
} else := {
	"allow": false,
	"reasons": sort(failed),
	"obligations": {
		"step_up": common.step_up_offer(failed, a.step_up),
		"mask_profile": "strict",
		"headers": {},
		"rate_limit_tier": a.obligations.rate_limit_tier,
		"audit": "full",
	},
} if {
	failed := {reason | some reason, ok in a.checks; ok != true}
}
