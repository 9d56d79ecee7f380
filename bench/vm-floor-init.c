/* SPDX-License-Identifier: Apache-2.0 */
/* bench/vm.sh's floor: the most trivial static PID 1 there is, which only powers the VM off. */
#include <sys/reboot.h>
#include <unistd.h>

int main(void)
{
        sync();
        reboot(RB_POWER_OFF);
        return 0;
}
