/// The element-wise and per-column parts of MLP and LSTM training on a GPU, as CUDA C++
/// compiled at run time by NVRTC (no CUDA toolkit at build time); the GEMMs go to cuBLAS.
///
/// Each kernel restates, operation for operation, a loop of the CPU engine (`MLP.Engine`,
/// `AdamW.step`): a per-column kernel runs one thread per column and walks the rows in order,
/// so its sums add in the CPU's order; with `--fmad=false` (no fused multiply-adds) and IEEE
/// division and square root (NVRTC's defaults), the float results are the CPU's bit for bit,
/// except where a transcendental (erf, tanh, exp) differs in its last place. The source is
/// plain C++ over a few CUDA built-ins, so a test compiles it for the host as well and checks
/// it against the CPU code without a GPU.
public enum CUDAKernels {
  /// The activation codes the kernels take.
  public typealias Activation = TrainingActivation

  /// The kernels' names, as `extern "C"` symbols.
  public static let names = [
    "vane_bias_mean", "vane_variance", "vane_normalize_activate", "vane_activation_backward",
    "vane_batchnorm_backward", "vane_column_sums", "vane_adamw_moments", "vane_adamw_update",
    "vane_scale", "vane_sum_squares", "vane_multiply", "vane_lstm_cell",
    "vane_lstm_cell_backward",
  ]

  /// NVRTC's options: PTX for `architecture` (a virtual one, such as `compute_80`, that the
  /// driver compiles for the GPU it runs on), no fused multiply-adds, IEEE division and roots.
  public static func options(architecture: String) -> [String] {
    [
      "--gpu-architecture=\(architecture)", "--std=c++17", "--fmad=false", "--prec-div=true",
      "--prec-sqrt=true",
    ]
  }

  /// The kernels' source.
  public static let source = #"""
    // Vane's MLP training kernels. Per-column kernels: one thread per column, rows in order.

    extern "C" __global__ void vane_bias_mean(float *z, const float *bias, float *mean,
                                              int count, int units) {
      int j = blockIdx.x * blockDim.x + threadIdx.x;
      if (j >= units) return;
      float sum = 0.0f;
      for (int i = 0; i < count; i++) {
        float value = z[(long)i * units + j] + bias[j];
        z[(long)i * units + j] = value;
        sum += value;
      }
      mean[j] = sum / (float)count;
    }

    extern "C" __global__ void vane_variance(const float *z, const float *mean, float *variance,
                                             float *inverse_std, int count, int units,
                                             float epsilon) {
      int j = blockIdx.x * blockDim.x + threadIdx.x;
      if (j >= units) return;
      float sum = 0.0f;
      for (int i = 0; i < count; i++) {
        float d = z[(long)i * units + j] - mean[j];
        sum += d * d;
      }
      float v = sum / (float)count;
      variance[j] = v;
      inverse_std[j] = 1.0f / sqrtf(v + epsilon);
    }

    // The activation of y, in double for GELU and tanh as the CPU engine computes them.
    __device__ float vane_activate(float y, int activation) {
      if (activation == 0) return y * (y > 0.0f ? 1.0f : 0.0f);
      double x = (double)y;
      if (activation == 1) return (float)(0.5 * x * (1.0 + erf(x / sqrt(2.0))));
      return (float)tanh(x);
    }

    __device__ float vane_derivative(float y, int activation) {
      if (activation == 0) return y > 0.0f ? 1.0f : 0.0f;
      double x = (double)y;
      if (activation == 1) {
        return (float)(0.5 * (1.0 + erf(x / sqrt(2.0))) +
                       x * exp(-0.5 * x * x) / sqrt(2.0 * 3.141592653589793));
      }
      return (float)(1.0 - tanh(x) * tanh(x));
    }

    // z ← (z − μ)·σ⁻¹ (kept for the backward pass); out ← act(γ z + β) · mask.
    extern "C" __global__ void vane_normalize_activate(float *z, float *out, const float *mean,
                                                       const float *inverse_std,
                                                       const float *gamma, const float *beta,
                                                       const float *mask, int count, int units,
                                                       int activation) {
      long k = (long)blockIdx.x * blockDim.x + threadIdx.x;
      if (k >= (long)count * units) return;
      int j = (int)(k % units);
      float x = (z[k] - mean[j]) * inverse_std[j];
      z[k] = x;
      float y = gamma[j] * x + beta[j];
      if (activation == 0) {
        out[k] = y * (y > 0.0f ? 1.0f : 0.0f) * mask[k];
      } else {
        out[k] = vane_activate(y, activation) * mask[k];
      }
    }

    // δ ← δ · mask · act′(γ x̂ + β); ∂γ = Σ δ x̂, ∂β = Σ δ over the rows.
    extern "C" __global__ void vane_activation_backward(float *delta, const float *normal,
                                                        const float *gamma, const float *beta,
                                                        const float *mask, float *d_gamma,
                                                        float *d_beta, int count, int units,
                                                        int activation) {
      int j = blockIdx.x * blockDim.x + threadIdx.x;
      if (j >= units) return;
      float dg = 0.0f, db = 0.0f;
      for (int i = 0; i < count; i++) {
        long k = (long)i * units + j;
        float y = gamma[j] * normal[k] + beta[j];
        float d = delta[k] * (mask[k] * vane_derivative(y, activation));
        delta[k] = d;
        dg += d * normal[k];
        db += d;
      }
      d_gamma[j] = dg;
      d_beta[j] = db;
    }

    // Through the batch normalisation: δ ← γσ⁻¹ (δ − ∂β/b − x̂ ∂γ/b); ∂bias = Σ δ.
    extern "C" __global__ void vane_batchnorm_backward(float *delta, const float *normal,
                                                       const float *gamma,
                                                       const float *inverse_std,
                                                       const float *d_gamma,
                                                       const float *d_beta, float *d_bias,
                                                       int count, int units) {
      int j = blockIdx.x * blockDim.x + threadIdx.x;
      if (j >= units) return;
      float b = (float)count;
      float scale = gamma[j] * inverse_std[j], shift = d_beta[j] / b, slope = d_gamma[j] / b;
      float sum = 0.0f;
      for (int i = 0; i < count; i++) {
        long k = (long)i * units + j;
        float d = scale * (delta[k] - shift - normal[k] * slope);
        delta[k] = d;
        sum += d;
      }
      d_bias[j] = sum;
    }

    extern "C" __global__ void vane_column_sums(const float *x, float *sums, int count,
                                                int columns) {
      int j = blockIdx.x * blockDim.x + threadIdx.x;
      if (j >= columns) return;
      float sum = 0.0f;
      for (int i = 0; i < count; i++) sum += x[(long)i * columns + j];
      sums[j] = sum;
    }

    // AdamW (as AdamW.step): the moments, then the decoupled decay and the step.
    extern "C" __global__ void vane_adamw_moments(float *first, float *second,
                                                  const float *gradient, float beta1,
                                                  float beta2, long n) {
      long k = (long)blockIdx.x * blockDim.x + threadIdx.x;
      if (k >= n) return;
      float g = gradient[k];
      first[k] = beta1 * first[k] + (1.0f - beta1) * g;
      second[k] = beta2 * second[k] + (1.0f - beta2) * g * g;
    }

    extern "C" __global__ void vane_adamw_update(float *theta, const float *first,
                                                 const float *second, const float *decay,
                                                 float rate, float correction2, float shrink,
                                                 float epsilon, long n) {
      long k = (long)blockIdx.x * blockDim.x + threadIdx.x;
      if (k >= n) return;
      float t = theta[k] - shrink * decay[k] * theta[k];
      theta[k] = t - rate * first[k] / (sqrtf(second[k] * correction2) + epsilon);
    }

    extern "C" __global__ void vane_scale(float *x, float factor, long n) {
      long k = (long)blockIdx.x * blockDim.x + threadIdx.x;
      if (k < n) x[k] *= factor;
    }

    // Σ x² in double, one partial sum per thread: thread t adds x[t], x[t + T], x[t + 2T], …
    // in order (T threads in all, reads coalesced), and the host adds the T partials in
    // order: the same launch gives the same sum run to run.
    extern "C" __global__ void vane_sum_squares(const float *x, double *partials, long n) {
      long t = (long)blockIdx.x * blockDim.x + threadIdx.x;
      long threads = (long)gridDim.x * blockDim.x;
      double sum = 0.0;
      for (long k = t; k < n; k += threads) sum += (double)x[k] * (double)x[k];
      partials[t] = sum;
    }

    extern "C" __global__ void vane_multiply(float *out, const float *a, const float *b, long n) {
      long k = (long)blockIdx.x * blockDim.x + threadIdx.x;
      if (k < n) out[k] = a[k] * b[k];
    }

    __device__ float vane_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

    // One LSTM step for `count` rows of H units (as Logistic.lstmCell, gates in the order input,
    // forget, cell, output): the gates' pre-activations plus biases are activated in place (the
    // backward pass reads them), c = f·c₋₁ + i·g, tanh(c), h = o·tanh(c), output = h · mask.
    // Row i's gates are gates[i·4H ..< (i + 1)·4H]; the other buffers are count × H.
    extern "C" __global__ void vane_lstm_cell(float *gates, const float *bias,
                                              const float *previous_cell, float *cell,
                                              float *cell_tanh, float *hidden, float *output,
                                              const float *mask, int count, int units) {
      long k = (long)blockIdx.x * blockDim.x + threadIdx.x;
      if (k >= (long)count * units) return;
      long i = k / units;
      int j = (int)(k % units);
      float *row = gates + i * 4 * units;
      float ig = vane_sigmoid(row[j] + bias[j]);
      float fg = vane_sigmoid(row[units + j] + bias[units + j]);
      float gg = tanhf(row[2 * units + j] + bias[2 * units + j]);
      float og = vane_sigmoid(row[3 * units + j] + bias[3 * units + j]);
      row[j] = ig;
      row[units + j] = fg;
      row[2 * units + j] = gg;
      row[3 * units + j] = og;
      float c = fg * previous_cell[k] + ig * gg;
      float t = tanhf(c);
      cell[k] = c;
      cell_tanh[k] = t;
      hidden[k] = og * t;
      output[k] = og * t * mask[k];
    }

    // One step back through the cell (as the CPU engine's loop): from the output's gradient
    // (times its dropout mask), the next step's hidden gradient and the cell gradient carried
    // back, the gates' pre-activation gradients; the carried cell gradient becomes c₋₁'s.
    extern "C" __global__ void vane_lstm_cell_backward(const float *gates, const float *cell_tanh,
                                                       const float *previous_cell,
                                                       const float *d_output, const float *mask,
                                                       const float *d_hidden_next,
                                                       float *d_cell_next, float *d_gates,
                                                       int count, int units) {
      long k = (long)blockIdx.x * blockDim.x + threadIdx.x;
      if (k >= (long)count * units) return;
      long i = k / units;
      int j = (int)(k % units);
      const float *row = gates + i * 4 * units;
      float *d_row = d_gates + i * 4 * units;
      float ig = row[j], fg = row[units + j], gg = row[2 * units + j], og = row[3 * units + j];
      float tc = cell_tanh[k];
      float dh = d_output[k] * mask[k] + d_hidden_next[k];
      float dc = dh * og * (1.0f - tc * tc) + d_cell_next[k];
      d_row[j] = dc * gg * ig * (1.0f - ig);
      d_row[units + j] = dc * previous_cell[k] * fg * (1.0f - fg);
      d_row[2 * units + j] = dc * ig * (1.0f - gg * gg);
      d_row[3 * units + j] = dh * tc * og * (1.0f - og);
      d_cell_next[k] = dc * fg;
    }
    """#
}
