# METADATA
# title: Public product information
# description: Open to anyone, anonymous included; rate limited, not audited.
package ztgate.public

import rego.v1

import data.ztgate.common

decision := common.decide({}, {}, null, common.allowed("public", settings, entry)) if {
	input.version == "1"
	entry := data.ztgate.config.routes[input.route.id]
	entry.classification == "public"
	entry.api_product == input.route.api_product
	settings := data.ztgate.config.classifications.public
}
