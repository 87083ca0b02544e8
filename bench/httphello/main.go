// Command httphello is the floor of `make bench-http`: a fasthttp server
// that answers every request 200 with a short body, doing nothing else.
// verifyd's POST /v1/verify is measured against it with the same load.
//
//	httphello -addr 127.0.0.1:8090
//	httphello -free-port     # prints a free loopback port (for bench/http.sh)
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"

	"github.com/valyala/fasthttp"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "listen address")
	freePort := flag.Bool("free-port", false, "print a loopback port that is free now, and exit")
	flag.Parse()
	if *freePort {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			log.Fatal(err)
		}
		fmt.Fprintln(os.Stdout, ln.Addr().(*net.TCPAddr).Port)
		ln.Close()
		return
	}
	body := []byte(`{"allow":true}`)
	s := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			ctx.SetContentType("application/json")
			ctx.SetBody(body)
		},
		Name: "httphello",
	}
	log.Fatal(s.ListenAndServe(*addr))
}
