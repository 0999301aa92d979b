# METADATA
# title: Inputs shared by the default bundle's unit tests
# description: |
#   One valid input document per classification (the shape of
#   policy/schema/input-v1.json; the same facts as policy.contract.example_input),
#   and decide(), which evaluates the entry rule for a document. Tests change
#   a base document with object.union (a deep merge).
package ztgate.fixtures_test

import rego.v1

now := 1767225600

decide(doc) := result if {
	result := data.ztgate.main.decision with input as doc
}

# A customer reading an account balance: passkey login two minutes ago, from
# a known device bound to the customer (trust `bound`), low risk. Allowed.
customer := {
	"version": "1",
	"request": {
		"method": "GET",
		"path": "/accounts/v1/accounts/6222020200112233445/balances",
		"host": "api.bank.example",
		"headers": {"accept": "application/json", "user-agent": "BankApp/8.4.2"},
		"query": {"currency": ["CNY"]},
		"client_address": "203.0.113.45",
		"tls": {"ja4": "t13d1516h2_8daaf6152771_e5627efa2ab1", "client_cert_sha256": null, "version": "TLSv1.3"},
	},
	"identity": {
		"subject": "cust-7d3f9a20",
		"kind": "customer",
		"acr": "urn:ztgate:acr:passkey",
		"amr": ["hwk", "user"],
		"auth_time": now - 120,
		"scopes": ["openid", "accounts:read", "payments:write"],
		"client_id": "bank-mobile-ios",
		"consent": null,
		"roles": [],
	},
	"device": {"id": "dev-1f7c2b9e", "known": true, "bound_to_subject": true, "trust": "bound", "anomalies": []},
	"risk": {"score": 12, "reasons": ["usual_device"]},
	"route": {
		"id": "accounts.balances",
		"api_product": "retail-accounts",
		"classification": "account",
		"params": {"account_id": "6222020200112233445"},
	},
	"time": {"now": now},
}

anonymous := {
	"subject": null,
	"kind": "anonymous",
	"acr": null,
	"amr": [],
	"auth_time": null,
	"scopes": [],
	"client_id": null,
	"consent": null,
	"roles": [],
}

# An anonymous visitor reading the product list from an unknown device.
public := object.union(customer, {
	"identity": anonymous,
	"device": {"id": null, "known": false, "bound_to_subject": false, "trust": "suspicious", "anomalies": ["emulator"]},
	"risk": {"score": 85, "reasons": ["new_device"]},
	"route": {"id": "products.list", "api_product": "products", "classification": "public", "params": {}},
})

# The same customer sending money, right after a passkey login. Allowed.
transfer := object.union(customer, {"route": {
	"id": "transfers.create",
	"api_product": "retail-payments",
	"classification": "transfer",
	"params": {},
}})

# A registered partner reading a consented account's balance from its network.
partner := object.union(customer, {
	"request": {"client_address": "198.51.100.20", "tls": {"client_cert_sha256": "3f1c6d2e9b8a7f6e5d4c3b2a19081726354453627180a9b8c7d6e5f4a3b2c1d0"}},
	"identity": object.union(anonymous, {
		"subject": "fintech-budgetly",
		"kind": "partner",
		"client_id": "fintech-budgetly",
		"scopes": ["ob:accounts:read", "ob:transactions:read"],
		"consent": {
			"id": "cns-5b2e91",
			"status": "active",
			"resources": ["6222020200112233445", "6222020200998877665"],
			"expires_at": now + 86400,
		},
	}),
	"device": {"id": null, "known": false, "bound_to_subject": false, "trust": "new", "anomalies": []},
	"risk": {"score": 20, "reasons": []},
	"route": {"id": "ob.accounts.balances", "api_product": "open-banking-accounts", "classification": "partner"},
})

# A customer-service agent viewing a customer, MFA, from a managed device.
staff := object.union(customer, {
	"identity": object.union(anonymous, {
		"subject": "staff-0042",
		"kind": "staff",
		"acr": "urn:ztgate:acr:mfa",
		"amr": ["pwd", "otp"],
		"auth_time": now - 1800,
		"client_id": "remote-service-console",
		"roles": ["csr"],
	}),
	"device": {"id": "dev-managed-0042", "known": true, "bound_to_subject": true, "trust": "bound_with_key", "anomalies": []},
	"risk": {"score": 10, "reasons": []},
	"route": {
		"id": "staff.customers.view",
		"api_product": "remote-service",
		"classification": "staff",
		"params": {"customer_id": "cust-7d3f9a20"},
	},
})

# Every deny carries these obligations (step_up aside).
denied(result) if {
	result.allow == false
	result.obligations.mask_profile == "strict"
	result.obligations.audit == "full"
	result.obligations.headers == {}
}
