package oidc

// DiscoveryPath is where OpenID Connect Discovery puts the provider
// configuration, below the issuer (Discovery §4).
const DiscoveryPath = "/.well-known/openid-configuration"

// AddDiscovery adds the OpenID provider fields (Discovery §3, RP-Initiated
// Logout §2.1, Back-Channel Logout §2.1) to a metadata document that
// already holds the RFC 8414 fields and the endpoints (userinfo_endpoint,
// end_session_endpoint among them), so one document serves both
// specifications and they cannot disagree.
func AddDiscovery(md map[string]any) {
	md["subject_types_supported"] = []string{SubjectPublic}
	md["id_token_signing_alg_values_supported"] = SigningAlgs
	md["response_modes_supported"] = ResponseModes
	md["prompt_values_supported"] = PromptValues
	md["claims_supported"] = append([]string{"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "amr", "at_hash", "azp", "sid"}, StandardClaims()...)
	md["claim_types_supported"] = []string{"normal"}
	md["claims_parameter_supported"] = true
	md["request_parameter_supported"] = false
	md["request_uri_parameter_supported"] = false
	md["require_request_uri_registration"] = false
	md["backchannel_logout_supported"] = true
	md["backchannel_logout_session_supported"] = true
	md["frontchannel_logout_supported"] = false
}
