/* test_init.c: PyTorch's initialisers (ops/init.h): the distributions' bounds and spreads, orthogonality,
 * and that each draws the weight, then the bias, from the generator it is given. */
#include "check.h"
#include "compare.h"
#include "ops/init.h"

static Rng rng;

static double orthogonality_error(const Tensor *w) {
    int rows = w->shape[0], cols = (int)(w->numel / (size_t)rows);
    int wide = rows <= cols, n = wide ? rows : cols;
    double err = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            if (wide)
                for (int k = 0; k < cols; k++)
                    s += (double)w->data[(size_t)i * cols + k] * w->data[(size_t)j * cols + k];
            else
                for (int k = 0; k < rows; k++)
                    s += (double)w->data[(size_t)k * cols + i] * w->data[(size_t)k * cols + j];
            err = fmax(err, fabs(s - (i == j)));
        }
    return err;
}

static void test_initialisers(void) {
    Tensor *wide = tensor_alloc(5, DIMS(16, 8, 3, 3, 3)), *tall = tensor_alloc(2, DIMS(40, 7));
    init_orthogonal(wide, &rng);
    init_orthogonal(tall, &rng);
    double tol = is_double_build() ? 1e-12 : 2e-6;
    check(orthogonality_error(wide) < tol, "orthogonal init: orthonormal rows for a (16, 216) weight (%.2g)",
          orthogonality_error(wide));
    check(orthogonality_error(tall) < tol, "orthogonal init: orthonormal columns for a (40, 7) weight (%.2g)",
          orthogonality_error(tall));
    /* Kaiming normal, fan_out: std sqrt(2 / (16 * 27)) */
    init_kaiming_normal_fan_out(wide, &rng);
    double ss = 0;
    for (size_t i = 0; i < wide->numel; i++) ss += (double)wide->data[i] * wide->data[i];
    double std = sqrt(ss / (double)wide->numel), want = sqrt(2.0 / (16 * 27));
    check(fabs(std / want - 1) < 0.08, "Kaiming fan_out std %.4f (want %.4f)", std, want);
    init_xavier_uniform(wide, 0.02, &rng);
    double bound = 0.02 * sqrt(6.0 / (8 * 27 + 16 * 27));
    check(max_abs(wide->data, wide->numel) <= bound && max_abs(wide->data, wide->numel) > 0.9 * bound,
          "Xavier uniform gain 0.02 stays within %.5f", bound);
    tensor_free(wide);
    tensor_free(tall);
}

/* nn.Linear / nn.Conv default: U(+-1/sqrt(fan_in)) for weight and bias, the weight drawn first */
static void test_default(void) {
    Tensor *w = tensor_alloc(4, DIMS(6, 5, 3, 3)), *b = tensor_alloc(1, DIMS(6));
    Rng r1, r2;
    rng_seed(&r1, 5);
    r2 = r1;
    init_default(w, b, &r1);
    double bound = 1 / sqrt(45.0);
    check(max_abs(w->data, w->numel) <= bound && max_abs(w->data, w->numel) > 0.9 * bound &&
              max_abs(b->data, b->numel) <= bound,
          "init_default: weight and bias within 1/sqrt(fan_in) = %.4f", bound);
    int same = 1;
    for (size_t i = 0; i < w->numel; i++) same &= w->data[i] == (real)(-bound + 2 * bound * rng_uniform(&r2));
    for (size_t i = 0; i < b->numel; i++) same &= b->data[i] == (real)(-bound + 2 * bound * rng_uniform(&r2));
    check(same, "init_default draws the weight, then the bias, in row-major order");
    Tensor *lin = tensor_alloc(2, DIMS(3, 40));
    init_default(lin, NULL, &r1);
    check(max_abs(lin->data, lin->numel) <= 1 / sqrt(40.0), "init_default of a (3, 40) linear weight without bias");
    tensor_free(w);
    tensor_free(b);
    tensor_free(lin);
}

int main(void) {
    rng_seed(&rng, 8128);
    test_default();
    test_initialisers();
    return check_summary("test_init");
}
