// Independent reader of snapex data files with Java's java.util.zip.GZIPInputStream, the way a
// JVM data pipeline (Spark, a plain Java job) would open them. JDK 11+ runs it without a
// separate compile step:
//
//     java tests/readers/GzipRead.java FILE.json.gz...
//
// Prints one JSON object on stdout:
//     {"files":[{"path":"…","lines":3,"bytes":123,"endsWithNewline":true}, …]}
// in argument order: `lines` counts "\n" bytes, `bytes` is the decompressed size (all gzip
// members; GZIPInputStream reads concatenated members). Exits 1 with a message on stderr when a
// file is not valid gzip or is truncated.

import java.io.BufferedInputStream;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.zip.GZIPInputStream;

public class GzipRead {
    public static void main(String[] args) {
        if (args.length == 0) {
            System.err.println("usage: java GzipRead.java FILE.json.gz...");
            System.exit(2);
        }
        StringBuilder out = new StringBuilder("{\"files\":[");
        for (int i = 0; i < args.length; i++) {
            long lines = 0;
            long bytes = 0;
            int last = -1;
            try (InputStream in = new GZIPInputStream(
                    new BufferedInputStream(new FileInputStream(args[i])), 1 << 16)) {
                byte[] buf = new byte[1 << 16];
                int n;
                while ((n = in.read(buf)) > 0) {
                    for (int j = 0; j < n; j++) {
                        if (buf[j] == '\n') {
                            lines++;
                        }
                    }
                    bytes += n;
                    last = buf[n - 1];
                }
            } catch (IOException e) {
                System.err.println("GzipRead: " + args[i] + ": " + e);
                System.exit(1);
            }
            if (i > 0) {
                out.append(',');
            }
            out.append("{\"path\":").append(quote(args[i]))
                .append(",\"lines\":").append(lines)
                .append(",\"bytes\":").append(bytes)
                .append(",\"endsWithNewline\":").append(last == '\n')
                .append('}');
        }
        out.append("]}");
        System.out.println(out);
    }

    private static String quote(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') {
                b.append('\\').append(c);
            } else if (c < 0x20) {
                b.append(String.format("\\u%04x", (int) c));
            } else {
                b.append(c);
            }
        }
        return b.append('"').toString();
    }
}
