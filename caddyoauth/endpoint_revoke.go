package caddyoauth

import "net/http"

func init() {
	registerEndpoint(endpoint{
		path:     PathPrefix + "revoke",
		metadata: "revocation_endpoint",
		serve: func(s *Server, w http.ResponseWriter, r *http.Request) error {
			s.svc.ServeRevoke(w, r)
			return nil
		},
	})
}
