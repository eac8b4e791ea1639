// Command mmgap carries a Mattermost deployment across an air gap: it gathers every artifact
// into one OCI-layout content store, ships it as a signed bundle, and checks it on the other side.
package main

import "os"

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }
