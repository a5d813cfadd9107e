using System.CommandLine;
using System.CommandLine.Parsing;
using SecureChannels.Cli.Commands;

Command[] fileCommands = [IdentityCommand.Create(), CredentialCommand.Create(), RevokeCommand.Create(), PolicyCommand.Create(), AgentCommand.Create()];
var root = new RootCommand("SecureChannels: end-to-end encrypted, mutually authenticated channels between agents.")
{
    ConformanceCommand.Create(),
    RelayCommand.Create(),
    AuthorityCommand.Create(),
    DemoCommand.Create(),
};
foreach (var command in fileCommands)
{
    root.Subcommands.Add(command);
}

var parse = root.Parse(args);

// The identity, credential, revoke, policy and agent commands report usage errors as 'error: ...' with exit code 2.
// Conformance keeps System.CommandLine's own handling (docs/protocol.md §3.2).
if (parse.Errors.Count > 0 && UnderAny(parse.CommandResult, fileCommands))
{
    foreach (var error in parse.Errors)
    {
        await Console.Error.WriteLineAsync($"error: {error.Message}").ConfigureAwait(false);
    }

    await Console.Error.WriteLineAsync($"Run '{CommandPath(parse.CommandResult)} --help' for usage.").ConfigureAwait(false);
    return ExitCodes.Usage;
}

return await parse.InvokeAsync().ConfigureAwait(false);

static bool UnderAny(CommandResult? result, Command[] commands)
{
    for (var current = result; current is not null; current = current.Parent as CommandResult)
    {
        if (commands.Contains(current.Command))
        {
            return true;
        }
    }

    return false;
}

static string CommandPath(CommandResult result)
{
    var names = new List<string>();
    for (var current = result; current is not null; current = current.Parent as CommandResult)
    {
        names.Insert(0, current.Command is RootCommand ? "securechannels" : current.Command.Name);
    }

    return string.Join(' ', names);
}
