package caddyoauth

import "net/http"

func init() {
	registerEndpoint(endpoint{
		path:     PathPrefix + "introspect",
		metadata: "introspection_endpoint",
		serve: func(s *Server, w http.ResponseWriter, r *http.Request) error {
			s.svc.ServeIntrospect(w, r)
			return nil
		},
	})
}
