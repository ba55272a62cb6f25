// The Go original, for side-by-side benchmarks: net/http ServeMux, /healthz writing "ok\n",
// net/http/pprof handlers on the same mux, glog for logs, port from MY_SERVICE_PORT.
package main

import (
	"flag"
	"net/http"
	_ "net/http/pprof" // registers /debug/pprof/* on http.DefaultServeMux
	"os"

	"github.com/golang/glog"
)

func healthz(w http.ResponseWriter, r *http.Request) {
	w.Write([]byte("ok\n"))
}

func main() {
	flag.Parse()
	defer glog.Flush()
	port := os.Getenv("MY_SERVICE_PORT")
	if port == "" {
		port = "80"
	}
	http.HandleFunc("/healthz", healthz)
	glog.Infof("listening on :%s", port)
	if err := http.ListenAndServe(":"+port, nil); err != nil {
		glog.Fatal(err)
	}
}
