using System.CommandLine;
using SecureChannels.Cli.Commands;

var root = new RootCommand("SecureChannels: end-to-end encrypted, mutually authenticated channels between agents.")
{
    ConformanceCommand.Create(),
};

return await root.Parse(args).InvokeAsync().ConfigureAwait(false);
