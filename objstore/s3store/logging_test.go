package s3store

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/smithy-go/logging"
)

// TestNoRequestLogs: even with every request and signing log mode asked
// for in the AWS config, the store's client logs nothing (those modes print
// the Authorization header and the string to sign).
func TestNoRequestLogs(t *testing.T) {
	s, err := newStore(context.Background(), Options{Bucket: "b", Endpoint: "http://127.0.0.1:1",
		Credentials: credentials.NewStaticCredentialsProvider("id", "secret", "")})
	if err != nil {
		t.Fatal(err)
	}
	all := aws.LogSigning | aws.LogRetries | aws.LogRequest | aws.LogRequestWithBody | aws.LogResponse |
		aws.LogResponseWithBody | aws.LogDeprecatedUsage | aws.LogRequestEventMessage | aws.LogResponseEventMessage
	o := s.client.Options()
	o.ClientLogMode, o.Logger = all, logging.StandardLogger{}
	noRequestLogs(&o)
	if o.ClientLogMode != 0 {
		t.Errorf("client log mode %v after noRequestLogs", o.ClientLogMode)
	}
	if _, ok := o.Logger.(logging.Nop); !ok {
		t.Errorf("logger %T after noRequestLogs", o.Logger)
	}
	if got := s.client.Options(); got.ClientLogMode != 0 {
		t.Errorf("the store's client logs %v", got.ClientLogMode)
	} else if _, ok := got.Logger.(logging.Nop); !ok {
		t.Errorf("the store's client logs through %T", got.Logger)
	}
}
