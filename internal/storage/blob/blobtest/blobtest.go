// Package blobtest opens real blob stores for tests: a folder in the test's
// temporary directory, and, when the versitygw binary is on the PATH, an
// S3-compatible server over a folder (like httptest).
package blobtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stratadev/strata/internal/storage/blob"
	"gocloud.dev/blob/s3blob"
)

// SkipS3 is the message tests skip with when versitygw is missing.
const SkipS3 = "versitygw not on PATH: S3 suite not run"

// Open returns a store on a fresh folder in the test's temporary
// directory, closed when the test ends.
func Open(t testing.TB) *blob.Store {
	t.Helper()
	s, err := blob.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatalf("open blob store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// S3Server is a versitygw process serving S3 over a temporary folder.
type S3Server struct {
	Endpoint       string // http://127.0.0.1:PORT
	Access, Secret string
	client         *s3.Client
	buckets        atomic.Int64
}

// StartS3 starts versitygw on a loopback port, stopped when the test
// ends, or skips the test with SkipS3 when versitygw is not on the PATH.
func StartS3(t testing.TB) *S3Server {
	t.Helper()
	bin, err := exec.LookPath("versitygw")
	if err != nil {
		t.Skip(SkipS3)
	}
	srv := &S3Server{Access: "strata-test", Secret: "strata-test-secret"}
	addr := freeAddr(t)
	srv.Endpoint = "http://" + addr

	var out syncBuffer
	cmd := exec.Command(bin, "--access", srv.Access, "--secret", srv.Secret, "--port", addr, "posix", t.TempDir())
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start versitygw: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("versitygw output:\n%s", out.String())
		}
	})

	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			t.Fatalf("versitygw exited before serving:\n%s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw not serving on %s after 15s: %v\n%s", addr, err, out.String())
		}
		time.Sleep(20 * time.Millisecond) // polling a port, not waiting for work
	}

	srv.client = s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(srv.Access, srv.Secret, ""),
		// S3-compatible servers want no flexible checksums unless asked.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
	return srv
}

// OpenS3 starts a server with StartS3 and returns a store on a bucket of
// it.
func OpenS3(t testing.TB) *blob.Store {
	t.Helper()
	return StartS3(t).Open(t)
}

// Open creates a fresh bucket on srv and returns a store on it, closed
// when the test ends.
func (srv *S3Server) Open(t testing.TB) *blob.Store {
	t.Helper()
	ctx := context.Background()
	name := fmt.Sprintf("strata-%d", srv.buckets.Add(1))
	if _, err := srv.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
	b, err := s3blob.OpenBucket(ctx, srv.client, name, &s3blob.Options{
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
	})
	if err != nil {
		t.Fatalf("open bucket %s: %v", name, err)
	}
	s := blob.New(b)
	t.Cleanup(func() { s.Close() })
	return s
}

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// syncBuffer collects a process's output from its copying goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
