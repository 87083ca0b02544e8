package lint

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/verifyd/verifyd"

// goFile is one parsed non-test source file of the module.
type goFile struct {
	pkg  string // import path of its package
	path string // path relative to the module root
	ast  *ast.File
}

func sources(t *testing.T) []goFile {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found: %v", err)
	}
	var files []goFile
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") && p != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ImportsOnly|parser.ParseComments)
		if err != nil {
			return err
		}
		full, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			return err
		}
		full.Imports = f.Imports
		rel, _ := filepath.Rel(root, p)
		files = append(files, goFile{pkg: module + "/" + filepath.ToSlash(filepath.Dir(rel)), path: rel, ast: full})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 20 {
		t.Fatalf("found only %d source files: is the walk broken?", len(files))
	}
	return files
}

func imports(f goFile) []string {
	var out []string
	for _, imp := range f.ast.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		out = append(out, p)
	}
	return out
}

func under(pkg, dir string) bool {
	p := module + "/" + dir
	return pkg == p || strings.HasPrefix(pkg, p+"/")
}

// TestImportDirection keeps imports flowing cmd -> ipc -> verify ->
// keystore, rbac.
func TestImportDirection(t *testing.T) {
	forbidden := map[string][]string{
		"rbac":     {"verify", "keystore", "ipc", "cmd", "internal"},
		"keystore": {"verify", "ipc", "cmd"},
		"verify":   {"ipc", "cmd"},
		"ipc":      {"cmd"},
	}
	for _, f := range sources(t) {
		for owner, deny := range forbidden {
			if !under(f.pkg, owner) {
				continue
			}
			for _, imp := range imports(f) {
				for _, d := range deny {
					if under(imp, d) {
						t.Errorf("%s imports %s: %s must not depend on %s", f.path, imp, owner, d)
					}
				}
			}
		}
	}
}

// TestFasthttpOnlyInHTTPAPI keeps fasthttp behind ipc/httpapi and the
// broker adapters it mounts (ipc/compat/...); bench/ holds the bare
// fasthttp server that is the HTTP floor.
func TestFasthttpOnlyInHTTPAPI(t *testing.T) {
	for _, f := range sources(t) {
		for _, imp := range imports(f) {
			if strings.HasPrefix(imp, "github.com/valyala/fasthttp") && !under(f.pkg, "ipc/httpapi") && !under(f.pkg, "ipc/compat") && !under(f.pkg, "bench") {
				t.Errorf("%s imports %s outside ipc/httpapi and ipc/compat", f.path, imp)
			}
		}
	}
}

// TestNoPrintOutsideCmd keeps packages quiet: they log through slog.
func TestNoPrintOutsideCmd(t *testing.T) {
	for _, f := range sources(t) {
		if under(f.pkg, "cmd") {
			continue
		}
		ast.Inspect(f.ast, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); ok && x.Name == "fmt" && strings.HasPrefix(sel.Sel.Name, "Print") {
				t.Errorf("%s uses fmt.%s outside cmd/", f.path, sel.Sel.Name)
			}
			return true
		})
	}
}

// TestTypedAtomics forbids the raw sync/atomic functions.
func TestTypedAtomics(t *testing.T) {
	for _, f := range sources(t) {
		ast.Inspect(f.ast, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); ok && x.Name == "atomic" {
				for _, raw := range []string{"Add", "Load", "Store", "Swap", "CompareAndSwap"} {
					if strings.HasPrefix(sel.Sel.Name, raw) {
						t.Errorf("%s uses atomic.%s: use the typed atomics (atomic.Int64, atomic.Pointer)", f.path, sel.Sel.Name)
					}
				}
			}
			return true
		})
	}
}

// TestJWXOnlyInTrust keeps jwx to key sets: only verify/trust may import it,
// so no token ever reaches a general-purpose JOSE parser.
func TestJWXOnlyInTrust(t *testing.T) {
	for _, f := range sources(t) {
		for _, imp := range imports(f) {
			if strings.HasPrefix(imp, "github.com/lestrrat-go/jwx") && !under(f.pkg, "verify/trust") {
				t.Errorf("%s imports %s: only verify/trust may use jwx, to parse key sets", f.path, imp)
			}
		}
	}
}
