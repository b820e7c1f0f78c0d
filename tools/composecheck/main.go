// composecheck validates a Compose file with compose-go, the loader behind `docker compose config`.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: composecheck docker-compose.yml")
		os.Exit(2)
	}
	opts, err := cli.NewProjectOptions(os.Args[1:], cli.WithOsEnv, cli.WithName("capmap"))
	if err == nil {
		var p interface{ ServiceNames() []string }
		proj, lerr := opts.LoadProject(context.Background())
		err = lerr
		if err == nil {
			p = proj
			fmt.Printf("valid: services %v\n", p.ServiceNames())
			return
		}
	}
	fmt.Fprintln(os.Stderr, "invalid:", err)
	os.Exit(1)
}
