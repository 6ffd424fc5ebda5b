package caddyoauth

import "net/http"

func init() {
	registerEndpoint(endpoint{
		path:     PathPrefix + "token",
		metadata: "token_endpoint",
		serve: func(s *Server, w http.ResponseWriter, r *http.Request) error {
			s.svc.ServeToken(w, r)
			return nil
		},
	})
}
