package config

import (
	"reflect"
	"strings"
)

// Change names one key whose value differs between two configurations.
type Change struct {
	Section string // TOML table ("forwarder"); "" for a key outside any table (data_dir)
	Key     string // key inside Section ("shutdown_timeout")
}

// String writes the key as the docs do: "[forwarder] shutdown_timeout", "data_dir".
func (c Change) String() string { return sectionKey(c.Section, c.Key) }

// SectionName is the part an operator looks up first: "[forwarder]", or the
// key itself for a top-level key ("data_dir").
func (c Change) SectionName() string {
	if c.Section == "" {
		return c.Key
	}
	return "[" + c.Section + "]"
}

// Diff lists every key whose value differs from old to next, in file order.
// It compares values, never prints them, so secrets may differ safely.
// Path (where the file came from) is not a setting and is never reported.
func Diff(old, next Config) []Change {
	var changes []Change
	eachKey(func(ch Change, field func(*Config) reflect.Value) {
		if !sameValue(field(&old), field(&next)) {
			changes = append(changes, ch)
		}
	})
	return changes
}

// sameValue is DeepEqual, except that an absent list and an empty one are
// the same setting (allowed_tokens = [] and no allowed_tokens at all).
func sameValue(a, b reflect.Value) bool {
	if a.Kind() == reflect.Slice && a.Len() == 0 && b.Len() == 0 {
		return true
	}
	return reflect.DeepEqual(a.Interface(), b.Interface())
}

// Take copies the value of one key from src into c: a reload builds the
// running configuration from the old one plus the keys it applied.
func (c *Config) Take(src Config, ch Change) {
	eachKey(func(k Change, field func(*Config) reflect.Value) {
		if k == ch {
			field(c).Set(field(&src))
		}
	})
}

// eachKey calls fn for every key of Config, with a way to reach that key's
// field in any Config. The TOML tags are the key names.
func eachKey(fn func(Change, func(*Config) reflect.Value)) {
	t := reflect.TypeFor[Config]()
	for i := range t.NumField() {
		f := t.Field(i)
		name := tomlName(f)
		if name == "" {
			continue
		}
		if f.Type.Kind() != reflect.Struct {
			fn(Change{Key: name}, func(c *Config) reflect.Value { return reflect.ValueOf(c).Elem().Field(i) })
			continue
		}
		for j := range f.Type.NumField() {
			key := tomlName(f.Type.Field(j))
			if key == "" {
				continue
			}
			fn(Change{Section: name, Key: key}, func(c *Config) reflect.Value {
				return reflect.ValueOf(c).Elem().Field(i).Field(j)
			})
		}
	}
}

func tomlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	if name == "-" {
		return ""
	}
	return name
}

// Keys lists every key of the configuration, in file order.
func Keys() []Change {
	var keys []Change
	eachKey(func(ch Change, _ func(*Config) reflect.Value) { keys = append(keys, ch) })
	return keys
}
