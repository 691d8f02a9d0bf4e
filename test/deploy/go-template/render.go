// Renders the Vault Agent template with Go's own text/template, to cross-check the JavaScript
// evaluator in ../support/consul-template-subset.ts on the semantics that matter (json.Number,
// map order, eq, trim markers, missingkey=error). The three consul-template functions the template
// calls are reproduced from consul-template's template/funcs.go and scratch.go: secret (reads a
// fixture instead of Vault), scratch (MapSet, Get) and toJSON.
//
//	go run render.go <template file> <fixture file>
//
// The fixture maps each path the template may read to Vault's `data` member for it (decoded with
// UseNumber, as Vault's API client does) or to {"error": "..."} for a read consul-template fails.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"text/template"
)

type secret struct {
	Data map[string]interface{}
}

type scratch struct {
	values map[string]interface{}
}

func (s *scratch) MapSet(k, mk string, v interface{}) (string, error) {
	if s.values == nil {
		s.values = map[string]interface{}{}
	}
	if _, ok := s.values[k]; !ok {
		s.values[k] = map[string]interface{}{}
	}
	typed, ok := s.values[k].(map[string]interface{})
	if !ok {
		return "", fmt.Errorf("%q is not a map", k)
	}
	typed[mk] = v
	return "", nil
}

func (s *scratch) Get(k string) interface{} {
	return s.values[k]
}

func decode(raw []byte, into interface{}) error {
	decoder := json.NewDecoder(bytes.NewReader(raw))
	decoder.UseNumber()
	return decoder.Decode(into)
}

func run() error {
	templateText, err := os.ReadFile(os.Args[1])
	if err != nil {
		return err
	}
	fixtureText, err := os.ReadFile(os.Args[2])
	if err != nil {
		return err
	}
	var fixture map[string]map[string]interface{}
	if err := decode(fixtureText, &fixture); err != nil {
		return err
	}
	var scratchpad scratch
	funcs := template.FuncMap{
		"secret": func(paths ...string) (*secret, error) {
			if len(paths) != 1 {
				return nil, fmt.Errorf("secret: one path expected")
			}
			response, ok := fixture[paths[0]]
			if !ok {
				return nil, fmt.Errorf("no secret exists at %s", paths[0])
			}
			if message, failed := response["error"]; failed {
				return nil, fmt.Errorf("%v", message)
			}
			return &secret{Data: response}, nil
		},
		"scratch": func() *scratch { return &scratchpad },
		"toJSON": func(i interface{}) (string, error) {
			result, err := json.Marshal(i)
			return string(bytes.TrimSpace(result)), err
		},
	}
	parsed, err := template.New("agent").Funcs(funcs).Option("missingkey=error").Parse(string(templateText))
	if err != nil {
		return err
	}
	return parsed.Execute(os.Stdout, nil)
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
