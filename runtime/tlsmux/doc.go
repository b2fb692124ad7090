// Package tlsmux serves TLS and plain connections on one port, with a
// certificate authority generated at start-up.
//
// The local runtime uses it so that functions which build the
// @connections endpoint as https://{domainName}/{stage}, as code written
// for API Gateway does, reach the same port that serves ws:// clients.
// [NewCA] makes the authority and a certificate for the names given;
// [CA.WritePEM] writes the authority's certificate for the clients to
// trust (AWS_CA_BUNDLE, NODE_EXTRA_CA_CERTS, SSL_CERT_FILE); [Listen]
// wraps a listener so that connections whose first byte opens a TLS
// handshake are served over TLS and the rest as they are.
package tlsmux
