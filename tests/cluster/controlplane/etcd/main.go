// Command etcd is etcd's own server (go.etcd.io/etcd/server/v3/etcdmain),
// built from its module: etcd's server/go.mod replaces its sibling modules
// with relative paths, so `go build go.etcd.io/etcd/server/v3` cannot be run
// from a dependent module without this wrapper.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
