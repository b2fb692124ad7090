package template

import (
	"sort"
	"strings"
)

// Output is one of the template's Outputs, resolved: Value as
// CloudFormation would report it for the stack (see App.LocalOutputs for
// the values a local client uses).
type Output struct {
	// Name is the output's logical ID.
	Name        string
	Description string
	Value       string
	// ExportName is Export.Name; empty when the output is not exported.
	ExportName string
}

// outputs resolves the template's Outputs. An output whose condition is
// false is left out, as CloudFormation does; one that cannot be resolved
// locally (Fn::ImportValue, a list value) gets an Unsupported line
// instead of failing the load, since nothing the runtime runs needs it.
func (a *App) outputs(raw any) error {
	if raw == nil {
		return nil
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return errorf("Outputs", "", "want an object, got %s", describe(raw))
	}
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		o, ok := m[name].(map[string]any)
		if !ok {
			return errorf("Outputs", name, "want an object, got %s", describe(m[name]))
		}
		if c, has := o["Condition"]; has {
			cn, ok := c.(string)
			if !ok {
				return errorf("Outputs", name+".Condition", "want a condition name")
			}
			on, err := a.stack.condition(cn, "Outputs", name+".Condition")
			if err != nil {
				return err
			}
			if !on {
				continue
			}
		}
		out := Output{Name: name}
		out.Description, _ = o["Description"].(string)
		v, err := a.stack.resolve(o["Value"], "Outputs", name+".Value")
		if err == nil {
			out.Value, err = scalarString(v)
		}
		if err != nil {
			a.unsupported("Outputs.%s is not resolved locally: %v", name, err)
			continue
		}
		if exp, ok := o["Export"].(map[string]any); ok {
			if v, err := a.stack.resolve(exp["Name"], "Outputs", name+".Export.Name"); err == nil {
				out.ExportName, _ = scalarString(v)
			}
		}
		a.Outputs = append(a.Outputs, out)
	}
	return nil
}

// LocalOutputs returns Outputs with the WebSocket API's AWS endpoint
// replaced by the local one at addr ("127.0.0.1:8080"): a value such as
// `!Sub wss://${Api}.execute-api.${AWS::Region}.amazonaws.com/${Stage}`
// becomes ws://127.0.0.1:8080/dev, its https:// form (the @connections
// endpoint) http://127.0.0.1:8080/dev, and the bare host the address.
func (a *App) LocalOutputs(addr string) []Output {
	host := a.APIHost()
	r := strings.NewReplacer("wss://"+host, "ws://"+addr, "https://"+host, "http://"+addr, host, addr)
	out := make([]Output, len(a.Outputs))
	for i, o := range a.Outputs {
		o.Value = r.Replace(o.Value)
		out[i] = o
	}
	return out
}

// APIHost is the host name the WebSocket API has on AWS,
// {APIID}.execute-api.{Region}.{URLSuffix}, as the template's values
// spell it.
func (a *App) APIHost() string {
	return a.hostOf(a.APIID)
}

// hostOf is the execute-api host name of the API whose id is apiID.
func (a *App) hostOf(apiID string) string {
	return apiID + ".execute-api." + a.Region + "." + a.stack.pseudo["AWS::URLSuffix"]
}
