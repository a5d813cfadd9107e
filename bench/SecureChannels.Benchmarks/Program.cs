using BenchmarkDotNet.Running;

namespace SecureChannels.Benchmarks;

internal static class Program
{
    private static int Main(string[] args)
    {
        if (args.Contains(CompareMode.Switch, StringComparer.Ordinal))
        {
            if (args.Length != 1)
            {
                Console.Error.WriteLine($"{CompareMode.Switch} takes no other arguments; use --filter without it for BenchmarkDotNet's own options.");
                return 1;
            }

            return CompareMode.Run();
        }

        var summaries = BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args).ToList();
        return summaries.Any(s => s.HasCriticalValidationErrors || s.Reports.Any(r => !r.Success)) ? 1 : 0;
    }
}
