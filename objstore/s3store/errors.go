package s3store

import (
	"errors"
	"fmt"
	"net"
	"net/http"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/rockstream/rockstream/objstore"
)

// mapError turns an SDK error into one that wraps an objstore sentinel,
// keeping the original for the details.
func mapError(err error) error {
	if kind := classify(err); kind != nil {
		return fmt.Errorf("%w: %w", kind, err)
	}
	return err
}

func classify(err error) error {
	switch errorCode(err) {
	case "NoSuchKey", "NotFound":
		return objstore.ErrNotFound
	case "PreconditionFailed":
		return objstore.ErrPreconditionFailed
	case "NotModified":
		return objstore.ErrNotModified
	case "InvalidRange":
		return objstore.ErrInvalidRange
	case "NoSuchBucket":
		return objstore.ErrNoBucket
	case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken", "Forbidden":
		return objstore.ErrAccessDenied
	}
	switch httpStatus(err) {
	case http.StatusNotFound:
		return objstore.ErrNotFound
	case http.StatusPreconditionFailed:
		return objstore.ErrPreconditionFailed
	case http.StatusNotModified:
		return objstore.ErrNotModified
	case http.StatusRequestedRangeNotSatisfiable:
		return objstore.ErrInvalidRange
	case http.StatusForbidden, http.StatusUnauthorized:
		return objstore.ErrAccessDenied
	case http.StatusRequestTimeout, http.StatusConflict, http.StatusTooManyRequests:
		return nil // transient: the SDK retries them
	}
	if st := httpStatus(err); (st >= 400 && st < 500) || st == http.StatusNotImplemented {
		return objstore.ErrRejected
	}
	var netErr net.Error
	var opErr *net.OpError
	if errors.As(err, &opErr) || (errors.As(err, &netErr) && netErr.Timeout()) {
		return objstore.ErrUnreachable
	}
	return nil
}

// bucketError says what a failed check of the bucket means: a 404 with no
// code is a missing bucket, not a missing key.
func bucketError(err error) error {
	if errors.Is(err, objstore.ErrNotFound) || errors.Is(err, objstore.ErrNoBucket) {
		return fmt.Errorf("%w (create it, or check its name and the region)", objstore.ErrNoBucket)
	}
	return err
}

func errorCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}
