package config

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// yamlBlock matches a fenced YAML block that starts with "cluster:".
var yamlBlock = regexp.MustCompile("(?s)```yaml\n(cluster:\n.*?)```")

// TestClusterDocsExamples loads the cluster sections shown in
// docs/scale-out.md and README.md as configurations: what an operator
// copies must be valid, and mean what the docs say.
func TestClusterDocsExamples(t *testing.T) {
	for _, doc := range []string{"../../docs/scale-out.md", "../../README.md"} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		m := yamlBlock.FindSubmatch(b)
		if m == nil {
			t.Fatalf("%s: no ```yaml block starting with cluster:", doc)
		}
		path := filepath.Join(t.TempDir(), "verifyd.yaml")
		if err := os.WriteFile(path, m[1], 0o600); err != nil {
			t.Fatal(err)
		}
		c, _, err := Load([]string{"--config", path}, func(string) string { return "" }, nil)
		if err != nil {
			t.Fatalf("%s: the cluster example does not load: %v\n%s", doc, err, m[1])
		}
		cl := c.Cluster
		if !cl.Enabled() || cl.Node != "broker-17" || len(cl.Etcd.Endpoints) != 3 || cl.Etcd.Prefix != "/verifyd/" ||
			cl.Etcd.RequestTimeout != 5*time.Second || cl.ReportInterval != 5*time.Second || cl.MaxStaleness != 0 {
			t.Errorf("%s: the cluster example loads as %+v", doc, cl)
		}
	}
}
