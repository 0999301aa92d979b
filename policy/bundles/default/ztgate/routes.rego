# METADATA
# title: Route table and data classification
# description: |
#   The route's requirements are looked up by id in data.ztgate.config.routes
#   (a key look-up, never a scan). The table is the authority: each
#   classification module decides only a route whose table entry has its
#   classification and the gateway's API product (and input version 1). Any
#   other request falls through to these reasons.
package ztgate.routes

import rego.v1

# Why no classification module decided (evaluated only on that deny path).
reasons contains "input:unsupported_version" if not input.version == "1"

reasons contains "route:unknown" if not data.ztgate.config.routes[input.route.id]

reasons contains "route:classification_mismatch" if {
	data.ztgate.config.routes[input.route.id].classification != input.route.classification
}

reasons contains "route:api_product_mismatch" if {
	data.ztgate.config.routes[input.route.id].api_product != input.route.api_product
}

# A sandbox route the table lists as production, or the reverse (absent: production).
reasons contains "route:environment_mismatch" if {
	entry := data.ztgate.config.routes[input.route.id]
	object.get(entry, "environment", "production") != object.get(input.route, "environment", "production")
}

reasons contains "route:unknown_classification" if {
	entry := data.ztgate.config.routes[input.route.id]
	not data.ztgate.config.classifications[entry.classification]
}
