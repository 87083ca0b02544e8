package adminclient

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"
)

// NewTLS returns a client, as New does, for a daemon that serves HTTPS,
// using tlsConfig (see [LoadTLSConfig]): the CAs its certificate must
// chain to and the client certificate to present. addr must be an
// https:// address. tlsConfig is copied.
func NewTLS(addr, adminKey string, timeout time.Duration, tlsConfig *tls.Config) (*Client, error) {
	c, err := New(addr, adminKey, timeout)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(c.base, "https://") {
		return nil, fmt.Errorf("%w: address %q is not https://: a CA bundle or a client certificate needs an https:// address", ErrInvalidArgument, c.base)
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = tlsConfig.Clone()
	c.hc.Transport = t
	return c, nil
}

// LoadTLSConfig returns the TLS configuration of a client from PEM files:
// caFile is the CA bundle the daemon's certificate must chain to ("": the
// system's roots); certFile and keyFile are the client certificate and
// its private key, given both or neither. Errors name the file, never its
// contents, and wrap [ErrInvalidArgument].
func LoadTLSConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("%w: CA bundle: %v", ErrInvalidArgument, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: CA bundle %s holds no PEM certificate", ErrInvalidArgument, caFile)
		}
		conf.RootCAs = pool
	}
	switch {
	case certFile != "" && keyFile != "":
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: client certificate %s and key %s: %v", ErrInvalidArgument, certFile, keyFile, err)
		}
		conf.Certificates = []tls.Certificate{pair}
	case certFile != "" || keyFile != "":
		return nil, fmt.Errorf("%w: a client certificate needs both its certificate file and its key file", ErrInvalidArgument)
	}
	return conf, nil
}
