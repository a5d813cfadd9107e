using BenchmarkDotNet.Running;
using SecureChannels.Benchmarks.SideBySide;
using SecureChannels.Benchmarks.Soak;

namespace SecureChannels.Benchmarks;

internal static class Program
{
    private static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == SoakMode.Command)
        {
            return SoakMode.Run(args[1..]);
        }

        if (args.Length > 0 && args[0] == SideBySideMode.Command)
        {
            return SideBySideMode.Run(args[1..]);
        }

        if (args.Contains(CompareMode.Switch, StringComparer.Ordinal))
        {
            if (args.Length != 1)
            {
                Console.Error.WriteLine($"{CompareMode.Switch} takes no other arguments; use --filter without it for BenchmarkDotNet's own options.");
                return 1;
            }

            return CompareMode.Run();
        }

        if (args.Length > 0 && args[0] == RelayHostProcess.Switch)
        {
            return RelayHostProcess.RunChild(args);
        }

        if (args.Contains(RelayMode.Switch, StringComparer.Ordinal))
        {
            if (args.Length != 1)
            {
                Console.Error.WriteLine($"{RelayMode.Switch} takes no other arguments.");
                return 1;
            }

            return RelayMode.Run();
        }

        if (args.Contains(AuthorityMode.Switch, StringComparer.Ordinal))
        {
            if (args.Length != 1)
            {
                Console.Error.WriteLine($"{AuthorityMode.Switch} takes no other arguments.");
                return 1;
            }

            return AuthorityMode.Run();
        }

        var summaries = BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args).ToList();
        return summaries.Any(s => s.HasCriticalValidationErrors || s.Reports.Any(r => !r.Success)) ? 1 : 0;
    }
}
