package adminclient_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/verifyd/verifyd/internal/adminclient"
	"github.com/verifyd/verifyd/internal/adminclient/admintest"
)

func Example() {
	daemon := admintest.NewServer("example-admin-key")
	defer daemon.Close()

	c, err := adminclient.New(daemon.URL, "example-admin-key", 5*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	key, err := c.CreateKey(ctx, adminclient.KeySpec{Subject: "alice", Scopes: []string{"tool:data:*"}})
	if err != nil {
		log.Fatal(err)
	}
	// key.Secret is shown only now: hand it to its owner.
	for _, scope := range []string{"tool:data:read", "tool:admin:write"} {
		res, err := c.Verify(ctx, key.Secret, scope)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(scope, res.Allow, res.Status, res.Grant)
	}
	// Output:
	// tool:data:read true ok tool:data:*
	// tool:admin:write false forbidden
}
