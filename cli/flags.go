package cli

// flagsCommands are the flags subcommands; all ask the running agent.
func flagsCommands() []entry {
	return []entry{
		{"get", "print a flag's value (or payload) for a person", func(e env) command { return &flagsEvalCmd{env: e, sub: "get"} }},
		{"enabled", "exit 0 when a flag is on for a person, 1 when off", func(e env) command { return &flagsEvalCmd{env: e, sub: "enabled"} }},
		{"all", "print every flag's value for a person as JSON", func(e env) command { return &flagsEvalCmd{env: e, sub: "all"} }},
		{"list", "list the cached flag definitions and the cache's state", func(e env) command { return &flagsListCmd{env: e} }},
		{"reload", "fetch flag definitions from PostHog now", func(e env) command { return &flagsReloadCmd{env: e} }},
		{"cache", "the answer cache: clear", func(e env) command { return newFlagsCacheGroup(e) }},
	}
}

func newFlagsGroup(e env) *group {
	return &group{env: e, name: "flags", summary: "Feature flags, answered by the running agent: locally from definitions,\nby PostHog's /flags when they cannot decide (or with only a project key),\nand from PostHog's last answers when it cannot be reached.", subs: flagsCommands()}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
