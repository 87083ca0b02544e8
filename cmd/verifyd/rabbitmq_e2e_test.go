package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// rabbitPackages are the Debian packages the RabbitMQ test needs.
var rabbitPackages = []string{"rabbitmq-server", "mosquitto-clients"}

// rabbitPrograms are the programs the RabbitMQ test runs: the server
// script (run directly, not through /usr/sbin/rabbitmq-server, which
// switches to the rabbitmq user), epmd and the MQTT clients.
type rabbitPrograms struct {
	server, epmd, pub, sub string
}

// lookRabbitMQ finds the programs, installing the Debian packages when
// one is missing and the test runs as root. Otherwise the test skips,
// loudly, except under CI=true, where it fails.
func lookRabbitMQ(t *testing.T) rabbitPrograms {
	t.Helper()
	find := func() (rabbitPrograms, bool) {
		p := rabbitPrograms{server: "/usr/lib/rabbitmq/bin/rabbitmq-server"}
		if fi, err := os.Stat(p.server); err != nil || fi.Mode()&0o111 == 0 {
			return p, false
		}
		var err1, err2, err3 error
		p.epmd, err1 = exec.LookPath("epmd")
		p.pub, err2 = exec.LookPath("mosquitto_pub")
		p.sub, err3 = exec.LookPath("mosquitto_sub")
		return p, err1 == nil && err2 == nil && err3 == nil
	}
	if p, ok := find(); ok {
		return p
	}
	install := append([]string{"apt-get", "install", "-y", "-q", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=120"}, rabbitPackages...)
	why := "they are not installed, and the test does not run as root"
	if _, err := exec.LookPath("apt-get"); err != nil {
		why = "they are not installed, and there is no apt-get"
	} else if os.Geteuid() == 0 {
		t.Logf("RabbitMQ or the MQTT clients are missing: %s", strings.Join(install, " "))
		err := rabbitAptGet(install...)
		if err != nil {
			t.Logf("%v; running apt-get update and trying again", err)
			if err = rabbitAptGet("apt-get", "update", "-q", "-o", "DPkg::Lock::Timeout=120"); err == nil {
				err = rabbitAptGet(install...)
			}
		}
		if p, ok := find(); ok {
			return p
		}
		why = fmt.Sprintf("installing them failed: %v", err)
	}
	msg := "!!! RabbitMQ or the mosquitto clients not found (" + why + "): the RabbitMQ integration (docs/integrations/rabbitmq.md) is NOT tested; install them with: " + strings.Join(install, " ")
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return rabbitPrograms{}
}

// rabbitAptGet runs an apt-get command without prompts, for at most 5
// minutes.
func rabbitAptGet(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		const keep = 2000
		if len(out) > keep {
			out = out[len(out)-keep:]
		}
		return fmt.Errorf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// rabbitDoc returns the blocks of docs/integrations/rabbitmq.md marked
// <!-- test: name -->, by name.
func rabbitDoc(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "integrations", "rabbitmq.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := map[string]string{}
	lines := strings.Split(string(b), "\n")
	for i := 0; i < len(lines); i++ {
		name, ok := strings.CutPrefix(lines[i], "<!-- test: ")
		if !ok {
			continue
		}
		name = strings.TrimSuffix(name, " -->")
		if i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "```") {
			t.Fatalf("rabbitmq.md: the block %q does not follow its marker", name)
		}
		var body []string
		for i += 2; i < len(lines) && lines[i] != "```"; i++ {
			body = append(body, lines[i])
		}
		blocks[name] = strings.Join(body, "\n") + "\n"
	}
	for _, name := range []string{"rabbitmq.conf", "enabled_plugins", "verifyd.yaml", "alice.json"} {
		if blocks[name] == "" {
			t.Fatalf("rabbitmq.md has no block %q", name)
		}
	}
	return blocks
}

// rabbitReplace replaces the documented address old in text, which must
// hold it.
func rabbitReplace(t *testing.T, text, old, new string) string {
	t.Helper()
	if !strings.Contains(text, old) {
		t.Fatalf("the documented block holds no %s:\n%s", old, text)
	}
	return strings.ReplaceAll(text, old, new)
}

// rabbitPorts returns n loopback ports that were free a moment ago.
func rabbitPorts(t *testing.T, n int) []int {
	t.Helper()
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// rabbitServer is a RabbitMQ node under test, with its own epmd.
type rabbitServer struct {
	amqp, mqtt string // listener addresses
	output     *syncBuffer
	exited     chan struct{}
}

// startRabbitMQ runs RabbitMQ with conf (rabbitmq.conf, its listeners on
// the given ports) and plugins (enabled_plugins), its state in a
// temporary directory, and its own epmd; it waits until both listeners
// accept connections. Both processes are stopped at cleanup.
func startRabbitMQ(t *testing.T, bins rabbitPrograms, conf, plugins string, amqpPort, mqttPort int) *rabbitServer {
	t.Helper()
	ports := rabbitPorts(t, 2)
	distPort, epmdPort := ports[0], ports[1]
	dir := t.TempDir()
	for _, d := range []string{"home", "mnesia", "log"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for name, body := range map[string]string{"rabbitmq.conf": conf, "enabled_plugins": plugins} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	// epmd, in the foreground, so that it is this test's child.
	epmd := exec.Command(bins.epmd, "-port", strconv.Itoa(epmdPort), "-address", "127.0.0.1")
	epmdOut := &syncBuffer{}
	epmd.Stdout, epmd.Stderr = epmdOut, epmdOut
	if err := epmd.Start(); err != nil {
		t.Fatal(err)
	}
	epmdDone := make(chan struct{})
	go func() { epmd.Wait(); close(epmdDone) }()
	t.Cleanup(func() {
		epmd.Process.Kill()
		<-epmdDone
	})
	rabbitWaitTCP(t, "epmd", fmt.Sprintf("127.0.0.1:%d", epmdPort), 10*time.Second, epmdDone, epmdOut)

	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RABBITMQ_") && !strings.HasPrefix(kv, "ERL_") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"HOME="+filepath.Join(dir, "home"),
		"RABBITMQ_CONF_ENV_FILE="+filepath.Join(dir, "rabbitmq-env.conf"), // absent: /etc/rabbitmq/rabbitmq-env.conf is not read
		"RABBITMQ_CONFIG_FILE="+filepath.Join(dir, "rabbitmq.conf"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(dir, "enabled_plugins"),
		"RABBITMQ_MNESIA_BASE="+filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(dir, "log"),
		"RABBITMQ_LOGS=-",
		fmt.Sprintf("RABBITMQ_NODENAME=verifyd-e2e-%d@localhost", amqpPort),
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		fmt.Sprintf("RABBITMQ_NODE_PORT=%d", amqpPort),
		fmt.Sprintf("RABBITMQ_DIST_PORT=%d", distPort),
		fmt.Sprintf("ERL_EPMD_PORT=%d", epmdPort),
		"ERL_EPMD_ADDRESS=127.0.0.1",
		"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1} -start_epmd false",
	)
	s := &rabbitServer{amqp: fmt.Sprintf("127.0.0.1:%d", amqpPort), mqtt: fmt.Sprintf("127.0.0.1:%d", mqttPort), output: &syncBuffer{}, exited: make(chan struct{})}
	cmd := exec.Command(bins.server)
	cmd.Dir, cmd.Env = dir, env
	cmd.Stdout, cmd.Stderr = s.output, s.output
	// Its own process group: the script, the Erlang VM and the VM's
	// helpers are stopped together.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 10 * time.Second // for a helper that keeps the output open
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() {
		// SIGTERM stops the node cleanly (about 1.5 s); SIGKILL after 20 s.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(20 * time.Second):
			t.Errorf("RabbitMQ did not stop within 20 s of SIGTERM; killing it")
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-s.exited
		}
		if t.Failed() {
			t.Logf("RabbitMQ output (last 8 KiB):\n%s", rabbitTail(s.output.String(), 8<<10))
		}
	})
	rabbitWaitTCP(t, "RabbitMQ's AMQP listener", s.amqp, 120*time.Second, s.exited, s.output)
	rabbitWaitTCP(t, "RabbitMQ's MQTT listener", s.mqtt, 30*time.Second, s.exited, s.output)
	t.Logf("RabbitMQ started in %s", time.Since(start).Round(100*time.Millisecond))
	return s
}

// rabbitWaitTCP waits until addr accepts connections, for at most limit,
// failing when exited closes first.
func rabbitWaitTCP(t *testing.T, what, addr string, limit time.Duration, exited chan struct{}, output *syncBuffer) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			t.Fatalf("%s: the process exited:\n%s", what, rabbitTail(output.String(), 8<<10))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s does not accept connections after %s:\n%s", what, addr, limit, rabbitTail(output.String(), 8<<10))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// rabbitTail returns the last n bytes of s.
func rabbitTail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// rabbitDial logs in to RabbitMQ over AMQP.
func rabbitDial(addr, username, password string) (*amqp.Connection, error) {
	u := url.URL{Scheme: "amqp", User: url.UserPassword(username, password), Host: addr, Path: "/"}
	return amqp.DialConfig(u.String(), amqp.Config{Dial: amqp.DefaultDial(10 * time.Second), Heartbeat: 10 * time.Second})
}

// rabbitRefused reports whether err is RabbitMQ's 403 ACCESS_REFUSED.
func rabbitRefused(err error) bool {
	var ae *amqp.Error
	return errors.As(err, &ae) && ae.Code == amqp.AccessRefused
}

// rabbitMQTTClient is a mosquitto client running in the background, for
// at most 30 s; done closes when it has exited, and then output holds
// what it printed.
type rabbitMQTTClient struct {
	done   chan struct{}
	output syncBuffer
	err    error // set when done closes
}

// startRabbitMQTTClient starts the client bin with args.
func startRabbitMQTTClient(t *testing.T, bin string, args ...string) *rabbitMQTTClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	c := &rabbitMQTTClient{done: make(chan struct{})}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &c.output, &c.output
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() { c.err = cmd.Wait(); cancel(); close(c.done) }()
	t.Cleanup(func() { cancel(); <-c.done })
	return c
}

// wait waits for the client to exit, for at most 30 s.
func (c *rabbitMQTTClient) wait(t *testing.T, what string) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: the client did not exit within 30 s", what)
	}
}

// TestRabbitMQ runs a real RabbitMQ against the real daemon with the
// configuration of docs/integrations/rabbitmq.md: AMQP and MQTT clients
// log in with their keys, allowed operations work, forbidden queues and
// routing keys are refused with ACCESS_REFUSED, a revoked key's open
// connection is refused at its next check and the key cannot log in
// again, and wrong credentials are refused.
func TestRabbitMQ(t *testing.T) {
	began := time.Now()
	bins := lookRabbitMQ(t)
	doc := rabbitDoc(t)
	ports := rabbitPorts(t, 2)
	amqpAddr, mqttAddr := fmt.Sprintf("127.0.0.1:%d", ports[0]), fmt.Sprintf("127.0.0.1:%d", ports[1])

	// startDaemon's --http-addr overrides the documented 127.0.0.1:8080.
	if !strings.Contains(doc["verifyd.yaml"], "addr: 127.0.0.1:8080") {
		t.Fatalf("the verifyd block does not listen on 127.0.0.1:8080:\n%s", doc["verifyd.yaml"])
	}
	cfg := filepath.Join(t.TempDir(), "verifyd.yaml")
	if err := os.WriteFile(cfg, []byte(doc["verifyd.yaml"]), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, t.TempDir(), "VERIFYD_CONFIG="+cfg, "VERIFYD_ADMIN_KEY="+policyAdminKey, "VERIFYD_LOG_LEVEL=debug")
	var spec map[string]any
	if err := json.Unmarshal([]byte(doc["alice.json"]), &spec); err != nil {
		t.Fatalf("alice.json: %v", err)
	}
	alice := d.createKey(spec).Secret
	doomed := d.createKey(spec) // revoked while its connection is open

	conf := rabbitReplace(t, doc["rabbitmq.conf"], "127.0.0.1:8080", d.addr)
	conf = rabbitReplace(t, conf, "127.0.0.1:5672", amqpAddr)
	conf = rabbitReplace(t, conf, "127.0.0.1:1883", mqttAddr)
	rmq := startRabbitMQ(t, bins, conf, doc["enabled_plugins"], ports[0], ports[1])
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("verifyd output:\n%s", rabbitTail(d.output(), 16<<10))
		}
	})

	// AMQP: declare, bind, publish (to amq.topic and the default
	// exchange), consume.
	conn, err := rabbitDial(rmq.amqp, "alice", alice)
	if err != nil {
		t.Fatalf("alice's AMQP login: %v", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("alice-q1", false, true, false, false, nil); err != nil {
		t.Fatalf("declare alice-q1: %v", err)
	}
	for _, key := range []string{"orders.created", "orders.*"} {
		if err := ch.QueueBind("alice-q1", key, "amq.topic", false, nil); err != nil {
			t.Fatalf("bind alice-q1 to %s: %v", key, err)
		}
	}
	deliveries, err := ch.Consume("alice-q1", "", true, true, false, false, nil)
	if err != nil {
		t.Fatalf("consume alice-q1: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, p := range [][2]string{{"amq.topic", "orders.created"}, {"", "alice-q1"}} {
		if err := ch.PublishWithContext(ctx, p[0], p[1], false, false, amqp.Publishing{Body: []byte(p[0] + "/" + p[1])}); err != nil {
			t.Fatalf("publish to %q %q: %v", p[0], p[1], err)
		}
		select {
		case m, ok := <-deliveries:
			if !ok || string(m.Body) != p[0]+"/"+p[1] {
				t.Fatalf("consumed %q (%v), want %q", m.Body, ok, p[0]+"/"+p[1])
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("the message published to %q %q did not arrive", p[0], p[1])
		}
	}

	// Refused: another user's queue, binding keys beyond the grant (with
	// '#' also matching zero words: orders.# receives orders), and a
	// routing key beyond it.
	refused := func(what string, op func(*amqp.Channel) error) {
		t.Helper()
		c, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		if err := op(c); !rabbitRefused(err) {
			t.Errorf("%s: %v, want ACCESS_REFUSED", what, err)
		}
	}
	refused("declare bob-q", func(c *amqp.Channel) error {
		_, err := c.QueueDeclare("bob-q", false, true, false, false, nil)
		return err
	})
	for _, key := range []string{"#", "orders.#", "payments.*"} {
		refused("bind "+key, func(c *amqp.Channel) error { return c.QueueBind("alice-q1", key, "amq.topic", false, nil) })
	}
	refused("publish payments.created", func(c *amqp.Channel) error {
		closed := c.NotifyClose(make(chan *amqp.Error, 1))
		if err := c.PublishWithContext(ctx, "amq.topic", "payments.created", false, false, amqp.Publishing{Body: []byte("x")}); err != nil {
			return err
		}
		select {
		case e := <-closed:
			if e == nil {
				return errors.New("the channel closed without an error")
			}
			return e
		case <-time.After(10 * time.Second):
			return errors.New("the channel stayed open")
		}
	})

	// MQTT: subscribe to orders/+ (routing key orders.*) and publish
	// orders/created until the subscriber has its message (a publication
	// that comes before the subscription is lost).
	mqtt := func(args ...string) []string {
		return append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(ports[1]), "-q", "1"}, args...)
	}
	sub := startRabbitMQTTClient(t, bins.sub, mqtt("-u", "alice", "-P", alice, "-i", "alice-sub", "-t", "orders/+", "-C", "1")...)
publish:
	for range 40 {
		select {
		case <-sub.done:
			break publish
		default:
		}
		pub := exec.Command(bins.pub, mqtt("-u", "alice", "-P", alice, "-i", "alice-pub", "-t", "orders/created", "-m", "hello over mqtt")...)
		if out, err := pub.CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_pub orders/created: %v\n%s", err, out)
		}
		time.Sleep(250 * time.Millisecond)
	}
	sub.wait(t, "MQTT subscriber of orders/+")
	if sub.err != nil || strings.TrimSpace(sub.output.String()) != "hello over mqtt" {
		t.Errorf("MQTT subscriber of orders/+: %v, printed %q", sub.err, sub.output.String())
	}
	// orders/# also receives orders: refused. RabbitMQ 3.10 closes the
	// connection instead of answering the SUBSCRIBE, and mosquitto_sub
	// reconnects and tries again until -W ends it.
	const zeroWords = "scope=rabbitmq/vhost/%2F/topic/amq.topic/orders:read"
	before := strings.Count(d.output(), zeroWords)
	denied := startRabbitMQTTClient(t, bins.sub, mqtt("-u", "alice", "-P", alice, "-i", "alice-sub2", "-t", "orders/#", "-C", "1", "-W", "3", "-d")...)
	denied.wait(t, "MQTT subscriber of orders/#")
	if out := denied.output.String(); !strings.Contains(out, "sending SUBSCRIBE") || strings.Contains(out, "received SUBACK") || strings.Contains(out, "received PUBLISH") {
		t.Errorf("MQTT subscription to orders/#: %v, printed:\n%s", denied.err, out)
	}
	if strings.Count(d.output(), zeroWords) == before {
		t.Error("the MQTT subscription to orders/# was not refused for the routing key orders")
	}

	// Revocation: the open connection of the doomed key is refused at its
	// next check.
	dconn, err := rabbitDial(rmq.amqp, "alice", doomed.Secret)
	if err != nil {
		t.Fatalf("the doomed key's login: %v", err)
	}
	defer dconn.Close()
	dch, err := dconn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dch.QueueDeclare("alice-r1", false, true, false, false, nil); err != nil {
		t.Fatalf("declare alice-r1 before the revocation: %v", err)
	}
	if code := d.adminHTTP("DELETE", "/v1/admin/keys/"+doomed.ID, "", nil); code != 200 {
		t.Fatalf("revoke: %d", code)
	}
	dch, err = dconn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dch.QueueDeclare("alice-r2", false, true, false, false, nil); !rabbitRefused(err) {
		t.Errorf("declare alice-r2 after the revocation: %v, want ACCESS_REFUSED", err)
	}
	// The other connection of the same user, logged in with another key,
	// goes on.
	if ch, err = conn.Channel(); err == nil {
		_, err = ch.QueueDeclare("alice-q2", false, true, false, false, nil)
	}
	if err != nil {
		t.Errorf("alice's own connection after the other key's revocation: %v", err)
	}

	// Refused logins, each delayed 3 s by RabbitMQ: run together.
	wrong := []byte(alice)
	wrong[len(wrong)-1] ^= 1 // a different last character
	var wg sync.WaitGroup
	for _, l := range []struct{ what, user, password string }{
		{"the revoked key", "alice", doomed.Secret},
		{"a wrong key", "alice", string(wrong)},
		{"another user's name", "bob", alice},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := rabbitDial(rmq.amqp, l.user, l.password)
			if err == nil {
				c.Close()
			}
			if !rabbitRefused(err) {
				t.Errorf("AMQP login with %s: %v, want ACCESS_REFUSED", l.what, err)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, bins.pub, "-h", "127.0.0.1", "-p", strconv.Itoa(ports[1]), "-u", "alice", "-P", "wrong-token",
			"-i", "alice-wrong", "-t", "orders/created", "-m", "x").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "not authorised") && !strings.Contains(string(out), "bad user name or password") {
			t.Errorf("MQTT login with a wrong key: %v\n%s", err, out)
		}
	}()
	wg.Wait()

	for _, series := range []string{
		`verifyd_rabbitmq_requests_total{endpoint="user",outcome="allow"}`,
		`verifyd_rabbitmq_requests_total{endpoint="user",outcome="deny"}`,
		`verifyd_rabbitmq_requests_total{endpoint="resource",outcome="allow"}`,
		`verifyd_rabbitmq_requests_total{endpoint="resource",outcome="deny"}`,
		`verifyd_rabbitmq_requests_total{endpoint="topic",outcome="allow"}`,
		`verifyd_rabbitmq_requests_total{endpoint="topic",outcome="deny"}`,
	} {
		if v := d.metric(series); v == "" || v == "0" {
			t.Errorf("%s = %q, want a count", series, v)
		}
	}
	if out := d.output(); strings.Contains(out, alice) || strings.Contains(out, doomed.Secret) {
		t.Error("verifyd's output holds a key")
	}
	t.Logf("TestRabbitMQ took %s", time.Since(began).Round(100*time.Millisecond))
}
