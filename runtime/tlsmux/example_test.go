package tlsmux_test

import (
	"fmt"
	"net"
	"net/http"

	"github.com/streamer-go/streamer/runtime/tlsmux"
)

// One port serves http:// and https:// with a CA made at start-up; the
// CA's PEM goes to the clients that must trust it.
func Example() {
	ca, err := tlsmux.NewCA("localhost", "127.0.0.1")
	if err != nil {
		fmt.Println(err)
		return
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	ln := tlsmux.Listen(inner, ca.ServerConfig())
	srv := &http.Server{Handler: http.NotFoundHandler()}
	go srv.Serve(ln)
	_ = ca.WritePEM("/tmp/ca.pem") // e.g. AWS_CA_BUNDLE=/tmp/ca.pem
	srv.Close()
	ln.Wait()
}
