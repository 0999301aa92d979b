# METADATA
# title: Partner (open-banking) routes
# description: |
#   A registered, active partner client with the route's scope, calling from
#   one of its allowed networks, under an active, unexpired consent covering
#   the resource the route names (route.params[consent_resource]), with risk
#   below the threshold, from a device (client) not assessed suspicious, on a
#   route of the partner's own environment (production or sandbox; absent means
#   production on both sides). The partner is looked up by client_id, never
#   searched.
package ztgate.partner

import rego.v1

# entry: the route's table entry; settings: its classification's; cfg: data.ztgate.config.
assess(entry, settings, cfg) := {
	"checks": object.union_n([
		{
			"identity:not_partner": input.identity.kind == "partner",
			"identity:missing_scope": object.get(entry, "scope", null) in input.identity.scopes,
			"device:suspicious": input.device.trust != "suspicious",
			"risk:too_high": input.risk.score < object.get(entry, "risk_threshold", settings.risk_threshold),
		},
		client_checks(partner, input.request.client_address, entry),
		consent_checks(input.identity.consent, entry),
	]),
	"step_up": null,
	"reason": "allow:partner",
	"obligations": {
		"step_up": null,
		"mask_profile": object.get(entry, "mask_profile", settings.mask_profile),
		"headers": headers(input.identity.consent),
		"rate_limit_tier": tier(partner, settings.rate_limit_tier),
		"audit": settings.audit,
	},
} if {
	partner := object.get(cfg.partners, input.identity.client_id, object.get(input.identity, "partner", null))
}

# The bank's own list (data) first; else the facts the gateway read from the partner's
# dynamic registration (input.identity.partner: status, allowed_networks,
# rate_limit_tier, environment). Only an unknown client is reported as such; a
# known one is checked further. A sandbox client never passes on a production
# route, nor a production client on a sandbox one.
client_checks(partner, address, entry) := {
	"partner:inactive": partner.status == "active",
	"partner:network_not_allowed": in_networks(partner.allowed_networks, address),
	"partner:wrong_environment": object.get(partner, "environment", "production") == object.get(entry, "environment", "production"),
} if {
	is_object(partner)
} else := {"partner:unknown_client": false}

# net.cidr_contains raises an error (never returns false) on a malformed
# address, so a bad address cannot become an allow: the evaluation fails and
# the engine denies (policy:eval_error).
in_networks(networks, address) if {
	some cidr in networks
	net.cidr_contains(cidr, address)
} else := false

consent_checks(consent, entry) := {
	"consent:inactive": consent.status == "active",
	"consent:expired": consent.expires_at > input.time.now,
	"consent:resource_not_covered": covers(consent, entry),
} if {
	is_object(consent)
} else := {"consent:missing": false}

# Routes that name no resource need only an active consent (upstream filters
# by the consent id it receives); others need the named parameter's value
# among the consent's resources.
covers(consent, entry) if {
	not entry.consent_resource
} else := resource in consent.resources if {
	resource := object.get(object.get(input.route, "params", {}), entry.consent_resource, null)
}

# The partner's own rate-limit tier, if it has one.
tier(partner, fallback) := partner.rate_limit_tier if {
	is_string(partner.rate_limit_tier)
} else := fallback

# Upstream learns which consent the call is made under.
headers(consent) := {
	"x-ztgate-classification": "partner",
	"x-ztgate-consent-id": consent.id,
} if {
	is_object(consent)
} else := {"x-ztgate-classification": "partner"}
