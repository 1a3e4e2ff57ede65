// A Go HTTP server on a socket devnode passes (docs/sockets.md):
//
//	command: ./server $(socket.Web.fd)      # go build -o server server.go
//
// It answers with the devnode instance and its pid, and stops gracefully on SIGTERM so a
// rolling restart drops nothing. Only the standard library.
package main

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
)

func main() {
	fd := 3
	if len(os.Args) > 1 {
		n, err := strconv.Atoi(os.Args[1])
		if err != nil {
			log.Fatalf("usage: %s [FD]", os.Args[0])
		}
		fd = n
	}
	f := os.NewFile(uintptr(fd), "socket")
	ln, err := net.FileListener(f) // a dup of fd: the original can go
	if err != nil {
		log.Fatalf("fd %d is not a listening socket: %v", fd, err)
	}
	f.Close()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %d\n", os.Getenv("DEVNODE_INSTANCE"), os.Getpid())
	})}
	done := make(chan struct{})
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
		<-sig
		srv.Shutdown(context.Background())
		close(done)
	}()
	log.Printf("serving on fd %d", fd)
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		log.Fatal(err)
	}
	<-done
}
