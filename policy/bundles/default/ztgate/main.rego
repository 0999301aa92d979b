# METADATA
# title: ztgate default zero-trust policy, entry point
# description: |
#   The gateway evaluates only data.ztgate.main.decision. Deny by default:
#   whatever the rules below leave undefined (a missing fact, a misconfigured
#   route) is the default deny. The module of the request's classification
#   decides, if the route table agrees with the gateway's route match (each
#   module checks); otherwise data.ztgate.routes.reasons explain the deny.
package ztgate.main

import rego.v1

import data.ztgate.common

default decision := {
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

decision := data.ztgate.public.decision if {
	input.route.classification == "public"
	data.ztgate.public.decision
} else := data.ztgate.customer.decision if {
	input.route.classification == "account"
	data.ztgate.customer.decision
} else := data.ztgate.transfer.decision if {
	input.route.classification == "transfer"
	data.ztgate.transfer.decision
} else := data.ztgate.partner.decision if {
	input.route.classification == "partner"
	data.ztgate.partner.decision
} else := data.ztgate.staff.decision if {
	input.route.classification == "staff"
	data.ztgate.staff.decision
} else := {
	"allow": false,
	"reasons": sort(data.ztgate.routes.reasons),
	"obligations": common.deny_obligations("default"),
} if {
	count(data.ztgate.routes.reasons) > 0
}
