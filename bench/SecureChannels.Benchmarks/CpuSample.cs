using System.Diagnostics;
using System.Globalization;

using static SecureChannels.Benchmarks.BenchText;

namespace SecureChannels.Benchmarks;

/// <summary>
/// Linux CPU accounting, to tell how much of the machine something else used during the run: all CPUs'
/// busy time (/proc/stat) minus this process's and its waited-for children's (/proc/self/stat), which
/// include every benchmark process. Build servers the run started count as "others".
/// </summary>
internal readonly record struct CpuSample(double Busy, double Steal, double Own, long Timestamp)
{
    // USER_HZ: the unit of both files, 100 on every Linux the .NET runtime supports.
    private const double TicksPerSecond = 100;

    public static CpuSample? Take()
    {
        try
        {
            var cpu = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray();

            // user nice system idle iowait irq softirq steal ...
            var busy = cpu[0] + cpu[1] + cpu[2] + cpu[5] + cpu[6];
            var self = File.ReadAllText("/proc/self/stat");
            var fields = self[(self.LastIndexOf(')') + 2)..].Split(' ');

            // After the command: state is field 3; utime, stime, cutime, cstime are fields 14 to 17.
            var own = fields.Skip(11).Take(4).Select(v => double.Parse(v, CultureInfo.InvariantCulture)).Sum();
            return new CpuSample(busy / TicksPerSecond, cpu[7] / TicksPerSecond, own / TicksPerSecond, Stopwatch.GetTimestamp());
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException or InvalidOperationException)
        {
            return null;
        }
    }

    public static string Describe(CpuSample? before, CpuSample? after)
    {
        if (before is not { } b || after is not { } a)
        {
            return "CPU use of other processes: unknown (no /proc).";
        }

        var seconds = Stopwatch.GetElapsedTime(b.Timestamp, a.Timestamp).TotalSeconds;
        var others = Math.Max(0, (a.Busy - b.Busy) - (a.Own - b.Own));
        return Invariant($"During the {seconds:F0} s run, this run used {a.Own - b.Own:F0} CPU-s, other processes {others:F0} CPU-s (on average {others / seconds:F2} cores), hypervisor steal {a.Steal - b.Steal:F0} CPU-s.");
    }
}
