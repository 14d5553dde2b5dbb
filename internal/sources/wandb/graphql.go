package wandb

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/registrywatch/registrywatch/internal/sources"
)

// graphQLError is a response that carries GraphQL errors (in a 200 answer, or
// in a 400/422 answer to a query the server refused).
type graphQLError struct {
	Messages []string
}

func (e *graphQLError) Error() string {
	return "graphql errors: " + strings.Join(e.Messages, "; ")
}

// isMissingField reports whether err is the server refusing a query because
// it has no field name (`Cannot query field "name" on type ...`).
func isMissingField(err error, name string) bool {
	return err != nil && strings.Contains(err.Error(), `Cannot query field "`+name+`"`)
}

type gqlRequest struct {
	Query         string         `json:"query"`
	OperationName string         `json:"operationName"`
	Variables     map[string]any `json:"variables"`
}

type gqlResponse[T any] struct {
	Data   *T `json:"data"`
	Errors []struct {
		Message string `json:"message"`
	} `json:"errors"`
}

// decodeResponse decodes a GraphQL response body into out. A response with
// any error is an error, even with partial data; a response without data is
// malformed.
func decodeResponse[T any](body []byte) (*T, error) {
	var r gqlResponse[T]
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, err
	}
	if len(r.Errors) > 0 {
		ge := &graphQLError{}
		for _, e := range r.Errors {
			ge.Messages = append(ge.Messages, e.Message)
		}
		return nil, ge
	}
	if r.Data == nil {
		return nil, errors.New("response has neither data nor errors")
	}
	return r.Data, nil
}

// query sends one GraphQL operation and decodes its data. Errors name the
// source, the operation and what it was about (scope).
func query[T any](ctx context.Context, c *Client, op, scope, q string, vars map[string]any) (*T, error) {
	body, err := c.fetch(ctx, op, scope, q, vars)
	if err != nil {
		return nil, err
	}
	return decodeBody[T](c, op, scope, body)
}

// fetch sends one GraphQL operation and returns the body of its answer.
func (c *Client) fetch(ctx context.Context, op, scope, q string, vars map[string]any) ([]byte, error) {
	var body []byte
	call := sources.Call{Method: http.MethodPost, Path: "/graphql", Body: gqlRequest{Query: q, OperationName: op, Variables: vars}}
	err := c.http.Do(ctx, call, func(b []byte) error {
		body = b
		return nil
	})
	if err != nil {
		var he *sources.HTTPError
		if errors.As(err, &he) && (he.Status == http.StatusUnauthorized || he.Status == http.StatusForbidden) {
			err = fmt.Errorf("%w (check the api_key and its access to the organization)", err)
		}
		return nil, c.opError(op, scope, err)
	}
	return body, nil
}

// decodeBody decodes the answer to one operation.
func decodeBody[T any](c *Client, op, scope string, body []byte) (*T, error) {
	d, err := decodeResponse[T](body)
	if err != nil {
		return nil, c.opError(op, scope, fmt.Errorf("decode response: %w", err))
	}
	return d, nil
}

// opError names the source and the operation (the shared HTTP helper's
// errors already name the source).
func (c *Client) opError(op, scope string, err error) error {
	where := "wandb " + op
	if scope != "" {
		where += " (" + scope + ")"
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("source %q", c.name)) {
		where = fmt.Sprintf("source %q: %s", c.name, where)
	}
	return fmt.Errorf("%s: %w", where, err)
}

// graphQLStatus is a RoundTripper that hands a 400 or 422 answer carrying
// GraphQL errors on as a 200, so that its errors (a query the server cannot
// validate, for one) are decoded and reported like errors in a 200 answer,
// and never retried.
type graphQLStatus struct{ next http.RoundTripper }

func (t graphQLStatus) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil || (resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusUnprocessableEntity) {
		return resp, err
	}
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if rerr != nil {
		return resp, nil
	}
	var probe struct {
		Errors []json.RawMessage `json:"errors"`
	}
	if json.Unmarshal(body, &probe) == nil && len(probe.Errors) > 0 {
		resp.StatusCode, resp.Status = http.StatusOK, "200 OK"
	}
	return resp, nil
}
